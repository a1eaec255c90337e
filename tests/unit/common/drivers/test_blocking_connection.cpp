#include "common/drivers/blocking_connection.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <csignal>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "common/posix/unique_fd.hpp"
#include "common/server/stop_signal.hpp"

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
  void connection_timed_out(TimeoutKind kind) override { timed_out = kind; }

  std::size_t received = 0;
  std::size_t sent = 0;
  std::size_t requests = 0;
  int last_error = 0;
  std::optional<TimeoutKind> timed_out;
};

// The test's end and the server's end of a connection; the server's is handed to the driver.
struct Pair {
  UniqueFd client;
  UniqueFd server;
  Pair() {
    std::array<int, 2> fds{};
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds.data()), 0);
    client.reset(fds[0]);
    server.reset(fds[1]);
  }
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
  ASSERT_EQ(write(pair.client.get(), request.data(), request.size()),
            static_cast<ssize_t>(request.size()));
  const ConnectionEnd end = serve_blocking_connection(std::move(pair.server), {}, observer);
  EXPECT_EQ(end, ConnectionEnd::client_closed);
  const std::string reply = read_until_closed(pair.client.get());
  EXPECT_EQ(observer.requests, 2u);
  EXPECT_EQ(observer.received, request.size());
  EXPECT_EQ(observer.sent, reply.size());
}

TEST(BlockingConnection, ProtocolErrorClosesWithTheStatus) {
  Pair pair;
  CountingObserver observer;
  const std::string bad = "GET / HTTP/1.1\r\nno colon\r\n\r\n";
  ASSERT_GT(write(pair.client.get(), bad.data(), bad.size()), 0);
  EXPECT_EQ(serve_blocking_connection(std::move(pair.server), {}, observer),
            ConnectionEnd::protocol_error);
  EXPECT_EQ(observer.last_error, 400);
}

TEST(BlockingConnection, IdleTimeoutEndsAQuietConnection) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.timeouts.idle = std::chrono::milliseconds(50);
  const std::string request = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_GT(write(pair.client.get(), request.data(), request.size()), 0);
  EXPECT_EQ(serve_blocking_connection(std::move(pair.server), settings, observer),
            ConnectionEnd::timed_out);
  EXPECT_EQ(observer.timed_out, TimeoutKind::idle);
  EXPECT_EQ(observer.requests, 1U);
}

// A client that connects and sends nothing holds its worker no longer than a slow header.
TEST(BlockingConnection, AConnectionThatSendsNothingHasTheHeaderTimeout) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.timeouts.header = std::chrono::milliseconds(50);
  EXPECT_EQ(serve_blocking_connection(std::move(pair.server), settings, observer),
            ConnectionEnd::timed_out);
  EXPECT_EQ(observer.timed_out, TimeoutKind::header);
  EXPECT_EQ(observer.last_error, 0);  // nothing was asked: closed without an answer
}

// Slowloris: a header line now and then must not keep the connection; the whole header
// section has --header-timeout, however often bytes arrive.
TEST(BlockingConnection, HeaderTimeoutAnswers408ThoughHeaderLinesKeepComing) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.timeouts.header = std::chrono::milliseconds(300);
  settings.timeouts.linger = std::chrono::milliseconds(50);
  auto served = std::async(std::launch::async, [&] {
    return serve_blocking_connection(std::move(pair.server), settings, observer);
  });
  const std::string head = "GET / HTTP/1.1\r\nHost: x\r\n";
  ASSERT_GT(write(pair.client.get(), head.data(), head.size()), 0);
  for (int line = 0;
       line < 10 && served.wait_for(std::chrono::milliseconds(60)) == std::future_status::timeout;
       ++line) {
    static_cast<void>(write(pair.client.get(), "X-a: b\r\n", 8));
  }
  ASSERT_EQ(served.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(served.get(), ConnectionEnd::timed_out);
  EXPECT_EQ(observer.timed_out, TimeoutKind::header);
  EXPECT_EQ(observer.last_error, 408);
  EXPECT_NE(read_until_closed(pair.client.get()).find("408 Request Timeout"), std::string::npos);
}

TEST(BlockingConnection, BodyTimeoutCutsABodyThatStopsComing) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.timeouts.body = std::chrono::milliseconds(100);
  settings.timeouts.linger = std::chrono::milliseconds(50);
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc";
  ASSERT_GT(write(pair.client.get(), head.data(), head.size()), 0);
  EXPECT_EQ(serve_blocking_connection(std::move(pair.server), settings, observer),
            ConnectionEnd::timed_out);
  EXPECT_EQ(observer.timed_out, TimeoutKind::body);
  EXPECT_NE(read_until_closed(pair.client.get()).find("408"), std::string::npos);
}

// A client that sends requests and never reads: once both socket buffers are full, the
// worker is freed within --send-timeout instead of blocking in send() for ever.
TEST(BlockingConnection, SendTimeoutFreesTheWorkerOfAClientThatNeverReads) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.timeouts.send = std::chrono::milliseconds(200);
  settings.timeouts.min_rate = 0;
  auto served = std::async(std::launch::async, [&] {
    return serve_blocking_connection(std::move(pair.server), settings, observer);
  });
  std::string body(std::size_t{64} * 1024, 'x');
  const std::string request =
      "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  for (int sent = 0;
       sent < 200 && served.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout;
       ++sent) {
    if (send(pair.client.get(), request.data(), request.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_EQ(served.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(served.get(), ConnectionEnd::timed_out);
  EXPECT_EQ(observer.timed_out, TimeoutKind::send);
}

// An error answer reaches a client that is still sending: the connection lingers, reading
// and dropping, instead of resetting the answer away.
TEST(BlockingConnection, AnErrorAnswerIsFollowedByALingeringClose) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.protocol.limits.max_body_bytes = 10;
  settings.timeouts.linger = std::chrono::milliseconds(300);
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
  ASSERT_GT(write(pair.client.get(), head.data(), head.size()), 0);
  auto served = std::async(std::launch::async, [&] {
    return serve_blocking_connection(std::move(pair.server), settings, observer);
  });
  // Still sending after the answer: the server reads on, so the writes go through.
  const std::string more(1000, 'y');
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(write(pair.client.get(), more.data(), more.size()), 1000);
  }
  EXPECT_EQ(served.get(), ConnectionEnd::protocol_error);
  EXPECT_EQ(observer.last_error, 413);
  EXPECT_NE(read_until_closed(pair.client.get()).find("413"), std::string::npos);
}

// A client that leaves before its answer is sent is a failed connection, not a slow reader:
// no send timeout is counted, and the worker is free at once.
TEST(BlockingConnection, AClientGoneBeforeItsAnswerIsAnErrorNotASendTimeout) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.timeouts.send = std::chrono::seconds(30);
  const std::string body(std::size_t{512} * 1024, 'x');
  const std::string request =
      "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  auto served = std::async(std::launch::async, [&] {
    return serve_blocking_connection(std::move(pair.server), settings, observer);
  });
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = write(pair.client.get(), request.data() + sent, request.size() - sent);
    ASSERT_GT(n, 0);
    sent += static_cast<std::size_t>(n);
  }
  shutdown(pair.client.get(), SHUT_RDWR);  // gone without reading the echo
  ASSERT_EQ(served.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(served.get(), ConnectionEnd::io_error);
  EXPECT_FALSE(observer.timed_out.has_value());
}

// The lingering close ends at its deadline even when the client never stops sending.
TEST(BlockingConnection, TheLingeringCloseEndsThoughTheClientKeepsSending) {
  Pair pair;
  CountingObserver observer;
  BlockingConnectionSettings settings;
  settings.protocol.limits.max_body_bytes = 10;
  settings.timeouts.linger = std::chrono::milliseconds(100);
  std::atomic<bool> done{false};
  std::thread flood([&] {
    const std::string head = "POST / HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n";
    const std::string more(std::size_t{64} * 1024, 'y');
    if (write(pair.client.get(), head.data(), head.size()) < 0) {
      return;
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done.load() && std::chrono::steady_clock::now() < until &&
           send(pair.client.get(), more.data(), more.size(), MSG_NOSIGNAL) > 0) {
    }
  });
  auto served = std::async(std::launch::async, [&] {
    return serve_blocking_connection(std::move(pair.server), settings, observer);
  });
  // Without the deadline the loop would read for as long as the flood lasts (5 s).
  const auto status = served.wait_for(std::chrono::seconds(3));
  done = true;
  flood.join();
  ASSERT_EQ(status, std::future_status::ready);
  EXPECT_EQ(served.get(), ConnectionEnd::protocol_error);
  EXPECT_EQ(observer.last_error, 413);
}

TEST(BlockingConnection, StopClosesAnIdleConnectionButFinishesARequestInFlight) {
  Pair pair;
  CountingObserver observer;
  StopSignal stop;
  BlockingConnectionSettings settings;
  settings.stop_fd = stop.fd();
  const std::string head = "GET / HTTP/1.1\r\n";
  ASSERT_GT(write(pair.client.get(), head.data(), head.size()), 0);
  auto served = std::async(std::launch::async, [&] {
    return serve_blocking_connection(std::move(pair.server), settings, observer);
  });
  // The request is half-read: a stop must not cut it off.
  EXPECT_EQ(served.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  stop.broadcast();
  EXPECT_EQ(served.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  ASSERT_GT(write(pair.client.get(), "\r\n", 2), 0);
  EXPECT_EQ(served.get(), ConnectionEnd::shutdown);
  EXPECT_EQ(observer.requests, 1U);
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
      ended_.set_value(serve_blocking_connection(std::move(pair.server), settings, observer_));
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

// A stop between requests still answers a request the kernel has already received.
TEST(BlockingConnection, AStopAnswersARequestAlreadyReceivedBeforeClosing) {
  Pair pair;
  CountingObserver observer;
  StopSignal stop;
  BlockingConnectionSettings settings;
  settings.stop_fd = stop.fd();
  stop.broadcast();
  const std::string two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  ASSERT_GT(write(pair.client.get(), two.data(), two.size()), 0);
  EXPECT_EQ(serve_blocking_connection(std::move(pair.server), settings, observer),
            ConnectionEnd::shutdown);
  EXPECT_EQ(observer.requests, 2U);
  const std::string answers = read_until_closed(pair.client.get());
  EXPECT_NE(answers.find("200 OK"), answers.rfind("200 OK"));
}

TEST(BlockingConnection, AStopSignalLetsARequestInFlightFinish) {
  Pair pair;
  const std::string head = "GET / HTTP/1.1\r\n";
  ASSERT_GT(write(pair.client.get(), head.data(), head.size()), 0);
  SignalStoppedConnection connection(pair);
  EXPECT_EQ(connection.ended().wait_for(std::chrono::milliseconds(100)),
            std::future_status::timeout);
  connection.stop();  // the request is half-read: it must not be cut off
  EXPECT_EQ(connection.ended().wait_for(std::chrono::milliseconds(100)),
            std::future_status::timeout);
  ASSERT_GT(write(pair.client.get(), "\r\n", 2), 0);
  ASSERT_EQ(connection.ended().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(connection.ended().get(), ConnectionEnd::shutdown);
  EXPECT_EQ(connection.requests(), 1U);
  EXPECT_NE(read_until_closed(pair.client.get()).find("200 OK"), std::string::npos);
}

}  // namespace
}  // namespace echolab
