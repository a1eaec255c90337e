#include "common/blocking_connection.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <future>
#include <string>
#include <thread>

#include "common/stop_signal.hpp"

namespace echolab {
namespace {

// Counts what the connection loop reports.
class CountingObserver final : public ServerObserver {
 public:
  void connection_accepted() override {}
  void connection_closed() override {}
  void connection_rejected() override {}
  void bytes_received(std::size_t bytes) override { received += bytes; }
  void bytes_sent(std::size_t bytes) override { sent += bytes; }
  void requests_served(Protocol /*protocol*/, std::size_t count, double /*seconds*/) override {
    requests += count;
  }
  void request_error(int status) override { last_error = status; }

  std::size_t received = 0;
  std::size_t sent = 0;
  std::size_t requests = 0;
  int last_error = 0;
};

struct Pair {
  int client = -1;
  int server = -1;
  Pair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    client = fds[0];
    server = fds[1];
  }
  ~Pair() { close(client); }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  Pair(Pair&&) = delete;
  Pair& operator=(Pair&&) = delete;
};

std::string read_until_closed(int fd) {
  std::string data;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) {
    data.append(buffer, static_cast<std::size_t>(n));
  }
  return data;
}

TEST(BlockingConnection, ServesRequestsAndReportsThem) {
  Pair pair;
  CountingObserver observer;
  const std::string request = "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(pair.client, request.data(), request.size()),
            static_cast<ssize_t>(request.size()));
  const ConnectionEnd end = serve_blocking_connection(pair.server, {}, observer);
  EXPECT_EQ(end, ConnectionEnd::client_closed);
  const std::string reply = read_until_closed(pair.client);
  EXPECT_EQ(observer.requests, 2u);
  EXPECT_EQ(observer.received, request.size());
  EXPECT_EQ(observer.sent, reply.size());
}

TEST(BlockingConnection, ProtocolErrorClosesWithTheStatus) {
  Pair pair;
  CountingObserver observer;
  const std::string bad = "GET / HTTP/1.1\r\nno colon\r\n\r\n";
  ASSERT_GT(write(pair.client, bad.data(), bad.size()), 0);
  EXPECT_EQ(serve_blocking_connection(pair.server, {}, observer), ConnectionEnd::protocol_error);
  EXPECT_EQ(observer.last_error, 400);
}

TEST(BlockingConnection, IdleTimeoutEndsAQuietConnection) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.idle_timeout = std::chrono::milliseconds(50);
  EXPECT_EQ(serve_blocking_connection(pair.server, settings, observer),
            ConnectionEnd::idle_timeout);
}

TEST(BlockingConnection, StopClosesAnIdleConnectionButFinishesARequestInFlight) {
  Pair pair;
  CountingObserver observer;
  StopSignal stop;
  BlockingConnectionSettings settings;
  settings.stop_fd = stop.fd();
  const std::string head = "GET / HTTP/1.1\r\n";
  ASSERT_GT(write(pair.client, head.data(), head.size()), 0);
  auto served = std::async(std::launch::async, [&] {
    return serve_blocking_connection(pair.server, settings, observer);
  });
  // The request is half-read: a stop must not cut it off.
  EXPECT_EQ(served.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  stop.broadcast();
  EXPECT_EQ(served.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  ASSERT_GT(write(pair.client, "\r\n", 2), 0);
  EXPECT_EQ(served.get(), ConnectionEnd::shutdown);
  EXPECT_EQ(observer.requests, 1u);
}

// The prefork child's way: a signal, blocked while serving and let in only by the wait.
volatile sig_atomic_t stop_flag = 0;

void set_stop_flag(int /*signal*/) { stop_flag = 1; }

// Serves `pair` on a thread of its own that blocks SIGUSR1 except inside the wait, as a
// prefork child blocks SIGTERM; stop() delivers the signal to that thread.
class SignalStoppedConnection {
 public:
  explicit SignalStoppedConnection(Pair& pair) {
    stop_flag = 0;
    struct sigaction action {};
    action.sa_handler = set_stop_flag;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART
    sigaction(SIGUSR1, &action, &previous_);
    std::promise<pthread_t> started;
    auto handle = started.get_future();
    thread_ = std::thread([this, &pair, &started] {
      sigset_t blocked;
      sigemptyset(&blocked);
      sigaddset(&blocked, SIGUSR1);
      pthread_sigmask(SIG_BLOCK, &blocked, &wait_mask_);
      sigdelset(&wait_mask_, SIGUSR1);
      BlockingConnectionSettings settings;
      settings.wait_mask = &wait_mask_;
      settings.stop_requested = &stop_flag;
      started.set_value(pthread_self());
      ended_.set_value(serve_blocking_connection(pair.server, settings, observer_));
    });
    serving_thread_ = handle.get();
  }
  ~SignalStoppedConnection() {
    thread_.join();
    sigaction(SIGUSR1, &previous_, nullptr);
  }
  SignalStoppedConnection(const SignalStoppedConnection&) = delete;
  SignalStoppedConnection& operator=(const SignalStoppedConnection&) = delete;
  SignalStoppedConnection(SignalStoppedConnection&&) = delete;
  SignalStoppedConnection& operator=(SignalStoppedConnection&&) = delete;

  void stop() { pthread_kill(serving_thread_, SIGUSR1); }
  std::future<ConnectionEnd>& ended() { return ended_future_; }
  [[nodiscard]] std::size_t requests() const { return observer_.requests; }

 private:
  struct sigaction previous_ {};
  sigset_t wait_mask_{};
  CountingObserver observer_;
  std::promise<ConnectionEnd> ended_;
  std::future<ConnectionEnd> ended_future_ = ended_.get_future();
  std::thread thread_;
  pthread_t serving_thread_{};
};

TEST(BlockingConnection, AStopSignalClosesAnIdleConnection) {
  Pair pair;
  SignalStoppedConnection connection(pair);
  EXPECT_EQ(connection.ended().wait_for(std::chrono::milliseconds(100)),
            std::future_status::timeout);
  connection.stop();
  ASSERT_EQ(connection.ended().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(connection.ended().get(), ConnectionEnd::shutdown);
}

TEST(BlockingConnection, AStopSignalLetsARequestInFlightFinish) {
  Pair pair;
  const std::string head = "GET / HTTP/1.1\r\n";
  ASSERT_GT(write(pair.client, head.data(), head.size()), 0);
  SignalStoppedConnection connection(pair);
  EXPECT_EQ(connection.ended().wait_for(std::chrono::milliseconds(100)),
            std::future_status::timeout);
  connection.stop();  // the request is half-read: it must not be cut off
  EXPECT_EQ(connection.ended().wait_for(std::chrono::milliseconds(100)),
            std::future_status::timeout);
  ASSERT_GT(write(pair.client, "\r\n", 2), 0);
  ASSERT_EQ(connection.ended().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(connection.ended().get(), ConnectionEnd::shutdown);
  EXPECT_EQ(connection.requests(), 1U);
  EXPECT_NE(read_until_closed(pair.client).find("200 OK"), std::string::npos);
}

}  // namespace
}  // namespace echolab
