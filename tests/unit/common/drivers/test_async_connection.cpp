#include "common/drivers/async_connection.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string_view>

namespace {

// Every allocation fails while this is set: the out-of-memory condition a test arms at the
// moment it chooses, on its one thread.
std::atomic<bool> allocations_fail{false};

}  // namespace

void* operator new(std::size_t size) {
  if (allocations_fail.load(std::memory_order_relaxed)) {
    throw std::bad_alloc();
  }
  if (void* memory = std::malloc(size == 0 ? 1 : size)) {  // NOLINT(*-no-malloc)
    return memory;
  }
  throw std::bad_alloc();
}
// GCC sees free() of memory from operator new where it inlines these: here they are a pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* memory) noexcept { std::free(memory); }  // NOLINT(*-no-malloc)
void operator delete(void* memory, std::size_t /*size*/) noexcept {
  std::free(memory);  // NOLINT(*-no-malloc)
}
#pragma GCC diagnostic pop

namespace echolab {
namespace {

using namespace std::chrono_literals;

// The server side of one connection, as PoolServer is for its own.
class TestHost final : public AsyncConnectionHost {
 public:
  TestHost() : metrics_(Model::pool) {}

  [[nodiscard]] const ServerOptions& options() const override { return options_; }
  [[nodiscard]] StripedMetrics& metrics() override { return metrics_; }
  [[nodiscard]] bool stopping() const override { return false; }
  void connection_ended(AsyncConnection* /*connection*/) override {
    allocations_fail = false;
    ++ended;
  }

  ServerOptions options_ = default_options(Model::pool);
  int ended = 0;

 private:
  StripedMetrics metrics_;
};

struct Loopback {
  asio::io_context io{1};
  asio::ip::tcp::socket client{io};
  asio::ip::tcp::socket server{io};

  Loopback() {
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

// A completion handler that runs out of memory (here the timer's, building the 408) ends its
// connection; the exception must not leave io_context::run(), which would end the thread
// running the event loop and with it the server.
TEST(AsyncConnection, OutOfMemoryInAHandlerEndsOnlyThatConnection) {
  TestHost host;
  host.options_.timeouts.header = 200ms;
  Loopback loopback;
  const std::string_view begun = "GET / HTTP/1.1\r\n";
  asio::write(loopback.client, asio::buffer(begun));
  std::make_shared<AsyncConnection>(std::move(loopback.server), host)->start();
  // Armed once the partial header has been read, before the header timeout fires.
  asio::steady_timer arm(loopback.io, 100ms);
  arm.async_wait([](const asio::error_code&) { allocations_fail = true; });

  bool escaped_the_loop = false;
  try {
    loopback.io.run();
  } catch (const std::bad_alloc&) {
    escaped_the_loop = true;
  }
  allocations_fail = false;

  EXPECT_FALSE(escaped_the_loop);
  EXPECT_EQ(host.ended, 1);
  const MetricsTotals totals = host.metrics().totals();
  EXPECT_EQ(totals.timeouts_by_kind[static_cast<std::size_t>(TimeoutKind::header)], 1u);
  EXPECT_EQ(totals.bytes_received, begun.size());
}

}  // namespace
}  // namespace echolab
