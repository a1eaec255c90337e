// What every server's main() shares: how it starts, how it fails, and how it leaves when
// unwinding is not safe.
#pragma once

#include <functional>
#include <string_view>

namespace echolab {

// A server's main(): runs `body` and returns its exit code; an exception that reaches here is
// logged as event=fatal, printed on stderr after `program`, and becomes exit code 1.
int run_server_main(std::string_view program, const std::function<int()>& body) noexcept;

// Leaves the process at once with `exit_code`, after flushing the standard streams: no
// destructor and no atexit handler runs. For a shutdown that must not free what a thread
// stuck in a handler still uses.
[[noreturn]] void exit_without_unwinding(int exit_code);

}  // namespace echolab
