// Envoy's properties as a network filter sees them: the connection's attributes in Envoy's
// encodings (addresses as text, ports and ids as 8-byte integers, booleans as one byte), the
// plugin's, and what the filter set with proxy_set_property (under "wasm.").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace tcpsteer::host {

// A proxy_get_property path: NUL-separated segments joined with '.', empty segments ignored.
std::string joinPropertyPath(std::string_view raw);

// The properties Envoy derives for a new downstream connection.
std::map<std::string, std::string> connectionProperties(const std::string& source_address,
                                                        const std::string& destination_address,
                                                        uint32_t connection_id);

std::string encodeInt64(int64_t value);

}  // namespace tcpsteer::host
