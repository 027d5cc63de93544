// demo-client's exchange: one HTTP, HTTPS or raw TCP request, with a deadline, reporting which
// egress answered or, on failure, the reason in plain words.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tcpsteer::apps {

struct ClientOptions {
  std::string target = "httpbin.org";  // host name or address
  uint16_t http_port = 80;
  uint16_t https_port = 443;
  uint16_t raw_port = 0;  // 0 = http_port
  std::string path = "/";
  std::string bind_address;  // local source address (the local e2e run picks even/odd sources)
  // Address to dial instead of resolving target (curl's --connect-to): Host and SNI stay target, so
  // a client can reach a name through a proxy or gateway listening elsewhere.
  std::string connect_address;
  std::string ca_file;    // extra trust anchor (PEM), e.g. the demo's self-signed certificate
  bool insecure = false;  // skip certificate verification
  std::chrono::milliseconds timeout{5000};  // whole exchange
};

struct Exchange {
  std::string scheme;  // http, https, raw
  bool ok = false;
  int status = 0;      // HTTP status (0 for raw)
  std::string egress;  // from x-egress, else from the body; empty if unknown
  double latency_ms = 0;
  std::string peer;     // address:port connected to
  std::string seen_as;  // the client address the server saw (x-egress-peer); behind a gateway, the
                        // gateway's address
  std::string error;    // plain-words reason when !ok
};

Exchange fetch(const ClientOptions& options, const std::string& scheme);

// "Hello from egress2 on port 8080!..." or {"egress": "egress2", ...} -> "egress2".
std::string egressFromBody(const std::string& body);

}  // namespace tcpsteer::apps
