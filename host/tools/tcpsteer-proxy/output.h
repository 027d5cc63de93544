// The proxy's log output (stdout, one line each, as Envoy's access and component logs). Safe from
// any thread; a closed or full stdout never kills the process (SIGPIPE is ignored in main): the
// failed line is counted, and output stops until stdout accepts writes again.
#pragma once

#include <cstdint>
#include <string>

namespace tcpsteer::proxy {

void emit(const std::string& line);
uint64_t droppedOutputLines();

}  // namespace tcpsteer::proxy
