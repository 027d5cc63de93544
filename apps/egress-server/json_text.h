// JSON string literals for the per-request log line and answers, the server's hot path.
#pragma once

#include <string>
#include <string_view>

namespace tcpsteer::apps {

// Appends text as a JSON string literal. Hand-written: building and dumping a nlohmann::json object
// per request took about a quarter of the server's CPU (callgrind). Bytes >= 0x80 are written as
// \u00XX (their Latin-1 reading), so any request bytes give valid JSON and none are lost.
void appendJsonString(std::string& out, std::string_view text);

}  // namespace tcpsteer::apps
