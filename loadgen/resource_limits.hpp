// Whether this machine lets one process hold the connections asked for, checked before the
// run starts so that a limit shows up as one clear message rather than as thousands of
// failed connects.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "common/server/capacity.hpp"

namespace echolab::load {

// Descriptors beyond the sockets: stdio, the JSON file, and each event loop's epoll,
// eventfd and timerfd.
std::size_t descriptors_needed(std::size_t connections, std::size_t threads);

// The limits of this process and machine, after raising the soft open-file limit to the
// hard one when `wanted_open_files` needs it.
SystemLimits current_limits(std::size_t wanted_open_files);

// Why `connections` cannot be held under `limits` (one line saying how to raise the
// limit), or nothing when they can.
std::optional<std::string> limits_problem(const SystemLimits& limits, std::size_t connections,
                                          std::size_t threads);

}  // namespace echolab::load
