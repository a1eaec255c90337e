#pragma once

#include <sys/types.h>

namespace echolab {

// Asks the kernel to send `signal` to this process when its parent dies, so that no worker,
// helper or probe child outlives the process that manages it, even one killed by SIGKILL.
// Returns false when the parent is no longer `parent`: one that died before the request took
// effect will never send the signal, and the caller must act as if it had (or when prctl()
// itself failed).
[[nodiscard]] bool die_with_parent(int signal, pid_t parent);

}  // namespace echolab
