// Fault injection, carried out: the driver that serves a fault route suffers it on the
// calling thread, so a crash or a blocking sleep hits exactly the process or thread of that
// concurrency model.
#pragma once

#include "common/protocol/fault_route.hpp"

namespace echolab {

// SIGSEGV, a blocking sleep, or a CPU spin.
void perform(const FaultAction& action) noexcept;

}  // namespace echolab
