// Text of the per-request log line and answers, the server's hot path: JSON string literals and
// decimal numbers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tcpsteer::apps {

// Appends text as a JSON string literal. Hand-written: building and dumping a nlohmann::json object
// per request took about a quarter of the server's CPU (callgrind). Bytes >= 0x80 are written as
// \u00XX (their Latin-1 reading), so any request bytes give valid JSON and none are lost.
void appendJsonString(std::string& out, std::string_view text);

// Appends value in decimal, as std::to_string would, without a string of its own.
void appendDecimal(std::string& out, uint64_t value);

}  // namespace tcpsteer::apps
