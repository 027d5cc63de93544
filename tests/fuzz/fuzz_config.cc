// libFuzzer target: the configuration parser never crashes, and the JSON reader never accepts a
// document that nlohmann-json (a widely used, conforming parser) rejects.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "filter/core/config.h"
#include "filter/core/decision.h"
#include "filter/core/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  tcpsteer::json::ParseError error;
  if (tcpsteer::json::parse(text, &error)) {
    try {
      (void)nlohmann::json::parse(text);
    } catch (const nlohmann::json::out_of_range&) {
      // nlohmann refuses numbers beyond double range (1e999); RFC 8259 leaves that limit to the
      // reader, so there is nothing to compare for this input.
      return 0;
    } catch (const nlohmann::json::parse_error&) {
      std::abort();  // we accepted a document a conforming parser rejects
    }
  }
  tcpsteer::ConfigResult result = tcpsteer::parseConfig(text);
  if (result.config) {
    // A configuration that parses must route every address without trouble, bound to a proxy with
    // Istio's metadata or to one without (a refusal must say what and where).
    tcpsteer::decide(*result.config, "10.1.2.3:4567", "192.0.2.1:443");
    tcpsteer::decide(*result.config, "[fd00::1]:4567", "[2001:db8::1]:80", "Api.Example.com");
    tcpsteer::WorkloadIdentity identity;
    identity.namespace_name = "x";
    identity.workload_name = "w";
    identity.service_account = "s";
    identity.has_labels = true;
    identity.labels = {{"app", "a"}};
    for (const auto& key : tcpsteer::labelKeys(*result.config))
      identity.labels.emplace_back(key, "v");
    tcpsteer::Config bound = *result.config;
    if (tcpsteer::bindWorkload(bound, identity)) std::abort();  // all metadata present
    tcpsteer::AddressMemos memos;
    // Repeats go through the rules memo: A, A, B, B, A must each get its own answer.
    for (const char* source :
         {"10.1.2.3:4567", "10.1.2.3:4568", "10.1.2.4:4567", "10.1.2.4:4568", "10.1.2.3:4569"}) {
      tcpsteer::Decision a = tcpsteer::decideTarget(bound, source, "192.0.2.1:443", std::nullopt,
                                                    memos, "a.example.com");
      tcpsteer::Decision b = tcpsteer::decide(bound, source, "192.0.2.1:443", "a.example.com");
      if (a.verdict != b.verdict || a.target != b.target || a.rule != b.rule) std::abort();
    }
    tcpsteer::Config bare = *result.config;
    if (auto refused = tcpsteer::bindWorkload(bare, tcpsteer::WorkloadIdentity());
        refused && (refused->field.empty() || refused->problem.empty()))
      std::abort();
  } else if (result.error.problem.empty() || result.error.expected.empty()) {
    std::abort();  // every rejection must say what is wrong and what is expected
  }
  return 0;
}
