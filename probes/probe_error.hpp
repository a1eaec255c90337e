// The one error type of echolab-probe: its message is printed as the single line a user sees.
#pragma once

#include <stdexcept>
#include <string>

namespace echolab::probe {

class ProbeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws ProbeError("<what>: <strerror(errno)>"), for a failed system call.
[[noreturn]] void throw_system_error(const std::string& what);

}  // namespace echolab::probe
