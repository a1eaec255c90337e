#include "common/server/server_main.hpp"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <iostream>

#include "common/server/log.hpp"

namespace echolab {

namespace {
constexpr int kLargeBufferBytes = 128 * 1024;
}  // namespace

int run_server_main(std::string_view program, const std::function<int()>& body) noexcept {
  // A large request's buffers (a 1 MiB body) are mapped and unmapped on their own, so their
  // memory goes back to the kernel when the request is done. Left to itself, glibc raises
  // its mmap threshold to the size of each mapped block freed, after which such buffers come
  // from the heap and stay there (docs/slow-clients.md has the measurement). Setting the
  // threshold turns that adjustment off.
  mallopt(M_MMAP_THRESHOLD, kLargeBufferBytes);
  try {
    return body();
  } catch (const std::exception& error) {
    log_error("fatal", {{"error", error.what()}});
    std::cerr << program << ": " << error.what() << "\n";
  } catch (...) {
    log_error("fatal", {{"error", "unknown exception"}});
    std::cerr << program << ": unknown exception\n";
  }
  return 1;
}

void exit_without_unwinding(int exit_code) {
  std::cout.flush();
  std::cerr.flush();
  static_cast<void>(std::fflush(nullptr));
  _exit(exit_code);
}

}  // namespace echolab
