#include "probes/probe_error.hpp"

#include <cerrno>
#include <cstring>

namespace echolab::probe {

void throw_system_error(const std::string& what) {
  throw ProbeError(what + ": " + std::strerror(errno));
}

}  // namespace echolab::probe
