#include "common/drivers/async_connection.hpp"
#include "common/metrics/striped_metrics.hpp"
#include "tests/unit/allocation_failure.hpp"
#include "tests/unit/common/drivers/test_host.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>

namespace echolab {
namespace {

using namespace std::chrono_literals;

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

std::string answer_received(asio::ip::tcp::socket& client) {
  std::string answer(256, '\0');
  asio::error_code error;
  answer.resize(client.read_some(asio::buffer(answer), error));
  return answer;
}

// A completion handler that runs out of memory (here the timer's, after its 408) ends its
// connection; the exception must not leave io_context::run(), which would end the thread
// running the event loop and with it the server.
TEST(AsyncConnection, OutOfMemoryInAHandlerEndsOnlyThatConnection) {
  TestHost host;
  host.options_.timeouts.header = 100ms;
  Loopback loopback;
  const std::string_view begun = "GET / HTTP/1.1\r\n";
  asio::write(loopback.client, asio::buffer(begun));
  std::make_shared<AsyncConnection>(std::move(loopback.server), host)->start();
  host.out_of_memory = true;  // the connection has what it needs until its header timeout

  bool escaped_the_loop = false;
  try {
    loopback.io.run();
  } catch (const std::bad_alloc&) {
    escaped_the_loop = true;
  }

  EXPECT_FALSE(escaped_the_loop);
  EXPECT_EQ(host.ended, 1);
  const MetricsTotals totals = host.metrics().totals();
  EXPECT_EQ(totals.timeouts_by_kind[static_cast<std::size_t>(TimeoutKind::header)], 1u);
  EXPECT_EQ(totals.bytes_received, begun.size());
  EXPECT_TRUE(answer_received(loopback.client).starts_with("HTTP/1.1 408 "));
}

// A timer completion already queued when the timer moves must not act. Here the header
// timeout passes while a request that gets a 413 waits on the socket; one wait of the event
// loop reports both, the read runs first and starts a lingering close (moving the timer), and
// then the completion of the old deadline runs: it must not end the lingering close early.
TEST(AsyncConnection, AStaleTimerCompletionDoesNotCutTheLingeringClose) {
  TestHost host;
  host.options_.timeouts.header = 50ms;
  host.options_.timeouts.linger = 500ms;
  host.options_.protocol.limits.max_body_bytes = 16;
  Loopback loopback;
  std::make_shared<AsyncConnection>(std::move(loopback.server), host)->start();
  loopback.io.poll();  // the first read now waits for the client
  std::this_thread::sleep_for(150ms);
  asio::write(loopback.client,
              asio::buffer(std::string_view("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n")));
  const auto sent = std::chrono::steady_clock::now();

  loopback.io.run();

  EXPECT_EQ(host.ended, 1);
  EXPECT_GE(host.ended_at - sent, 400ms);
  EXPECT_TRUE(answer_received(loopback.client).starts_with("HTTP/1.1 413 "));
}

// Started from outside its socket's event loop (in the pool's per-thread mode the acceptor's
// thread starts connections of the other contexts), a connection queues its first handler, an
// allocation. When that fails the connection must end at once, or its server would hold it
// open for ever and its shutdown would wait for it; and the exception must go on to the accept
// loop, which counts the connection as rejected.
TEST(AsyncConnection, AConnectionWhoseFirstHandlerCannotBeQueuedEndsAtOnce) {
  if (!kAllocationsCanFail) {
    GTEST_SKIP() << "no replaced operator new under ThreadSanitizer";
  }
  TestHost host;
  Loopback loopback;
  auto connection = std::make_shared<AsyncConnection>(std::move(loopback.server), host);

  bool reached_the_caller = false;
  {
    const LargeAllocationsFail every_allocation_fails(1);
    try {
      connection->start();
    } catch (const std::bad_alloc&) {
      reached_the_caller = true;
    }
  }

  EXPECT_TRUE(reached_the_caller);
  EXPECT_EQ(host.ended, 1);
  asio::error_code error;
  std::array<char, 1> byte{};
  loopback.client.read_some(asio::buffer(byte), error);  // closed: returns at once
  EXPECT_EQ(error, asio::error::eof);
}

}  // namespace
}  // namespace echolab
