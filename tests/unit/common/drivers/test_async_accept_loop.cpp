#include "common/drivers/async_accept_loop.hpp"
#include "common/metrics/striped_metrics.hpp"
#include "tests/unit/allocation_failure.hpp"
#include "tests/unit/common/drivers/test_host.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace echolab {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kRequest = "GET / HTTP/1.1\r\n\r\n";

// The descriptor of a socket listening on loopback, for the loop to adopt.
int listening_socket(asio::io_context& io, asio::ip::tcp::endpoint& bound) {
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  bound = acceptor.local_endpoint();
  return acceptor.release();
}

// What the server had sent by now: the event loop is no longer running.
std::string received(asio::ip::tcp::socket& client) {
  std::string bytes(512, '\0');
  asio::error_code error;
  client.non_blocking(true);
  bytes.resize(client.read_some(asio::buffer(bytes), error));
  return bytes;
}

bool closed(asio::ip::tcp::socket& client) {
  std::array<char, 1> byte{};
  asio::error_code error;
  client.non_blocking(true);
  client.read_some(asio::buffer(byte), error);
  return error == asio::error::eof || error == asio::error::connection_reset;
}

// The promise of the servers: an allocation failure costs one connection. Here the first
// connection's AsyncConnection cannot be had; the loop must close that connection, count it,
// and serve the next, rather than let bad_alloc out of io_context::run().
TEST(AsyncAcceptLoop, AConnectionThatCannotBeAllocatedIsClosedAndTheNextServed) {
  if (!kAllocationsCanFail) {
    GTEST_SKIP() << "no replaced operator new under ThreadSanitizer";
  }
  TestHost host;
  asio::io_context io{1};
  asio::ip::tcp::endpoint bound;
  int served = 0;
  AsyncAcceptLoop loop(
      io, listening_socket(io, bound), 0, host, [] { return std::size_t{0}; },
      [&](asio::ip::tcp::socket socket) {
        const bool first = served++ == 0;
        // Outside the loop nothing allocates as much as a connection and its read buffer.
        const LargeAllocationsFail connections_fail(first ? sizeof(AsyncConnection) : 0);
        auto connection = std::make_shared<AsyncConnection>(std::move(socket), host);
        connection->start();
      });
  asio::ip::tcp::socket unlucky(io);
  unlucky.connect(bound);
  asio::write(unlucky, asio::buffer(kRequest));
  asio::ip::tcp::socket next(io);
  next.connect(bound);
  asio::write(next, asio::buffer(kRequest));
  loop.start();

  bool escaped_the_loop = false;
  try {
    io.run_for(2s);
  } catch (const std::bad_alloc&) {
    escaped_the_loop = true;
  }

  EXPECT_FALSE(escaped_the_loop);
  EXPECT_EQ(served, 2);
  EXPECT_TRUE(closed(unlucky));
  EXPECT_TRUE(received(next).starts_with("HTTP/1.1 200 "));
  EXPECT_EQ(host.metrics().totals().connections_rejected, 1u);
}

}  // namespace
}  // namespace echolab
