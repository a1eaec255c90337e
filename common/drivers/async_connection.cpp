#include "common/drivers/async_connection.hpp"

#include <new>
#include <utility>

#include "common/drivers/drained_read.hpp"
#include "common/drivers/lingering.hpp"
#include "common/drivers/perform_fault.hpp"
#include "common/metrics/observer.hpp"
#include "common/posix/memory_scan.hpp"

namespace echolab {
namespace {

// While a fault handler blocks (a /sleep), no deadline of the client runs; the timer looks
// again this much later instead of firing in a loop.
constexpr std::chrono::seconds kFaultRecheck{1};

}  // namespace

AsyncConnection::AsyncConnection(asio::ip::tcp::socket socket, AsyncConnectionHost& host)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      host_(host),
      session_(host.options().protocol, scan_own_memory),
      deadline_(host.options().timeouts, Clock::now()) {}

// An exception that left a handler would leave io_context::run() and end the thread running
// the loop, and with it the whole server: out of memory ends this connection only, as it ends
// only its own connection in the blocking driver.
template <typename Work>
void AsyncConnection::closing_on_out_of_memory(Work work) {
  try {
    work();
  } catch (const std::bad_alloc&) {
    close();
  }
}

void AsyncConnection::start() {
  // As in the blocking servers: no Nagle delay behind the echo's one write per read.
  asio::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);  // write_some() below must never block an event loop
  // On the socket's own context: with one io_context per thread it is not the acceptor's.
  try {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      const std::lock_guard lock(self->mutex_);
      self->closing_on_out_of_memory([&self] {
        self->arm_timer(self->deadline_.next().at);
        self->read();
      });
    });
  } catch (const std::bad_alloc&) {
    // Queued on another thread's context, the first handler is allocated, and if that fails
    // nothing would ever end the connection: the host would keep it open and its shutdown
    // would wait for it. It ends here (no handler of it exists yet), and the accept loop,
    // which the exception reaches, counts it as rejected.
    close();
    throw;
  }
}

void AsyncConnection::read() {
  socket_.async_read_some(
      DrainedReadBuffer(buffer_.data(), buffer_.size()),
      [self = shared_from_this()](const asio::error_code& error, std::size_t bytes) {
        std::unique_lock lock(self->mutex_);
        self->closing_on_out_of_memory([&] { self->on_read(lock, error, bytes); });
      });
}

void AsyncConnection::on_read(std::unique_lock<std::mutex>& lock, const asio::error_code& error,
                              std::size_t bytes) {
  if (error || closed_) {
    close();
    return;
  }
  if (lingering_) {
    read();  // dropped: the answer is out, the client is still sending
    return;
  }
  ServerObserver& metrics = host_.metrics();
  metrics.bytes_received(bytes);
  metrics.workers_changed(-1, +1);
  const bool fed = feed(bytes);
  perform_faults(lock);
  // The server's handling time, until the answers are ready: how fast the client reads them
  // is the send deadline's business, not the duration histogram's.
  batch_handled_s_ = std::chrono::duration<double>(Clock::now() - batch_started_).count();
  metrics.workers_changed(+1, -1);
  if (fed && !session_.output().empty()) {
    write_output();
  } else if (!fed || session_.close_after_flush()) {
    close();
  } else {
    arm_timer_if_earlier();
    read();
  }
}

// False when even the Session's 503 could not be had: the connection is given up, alone.
bool AsyncConnection::feed(std::size_t bytes) {
  batch_started_ = Clock::now();
  if (deadline_.lifetime_over(batch_started_)) {
    session_.end_keep_alive();  // --max-connection-lifetime: this request is the last
  }
  try {
    pending_ = session_.feed(std::span<const char>(buffer_.data(), bytes));
  } catch (const std::bad_alloc&) {
    return false;
  }
  deadline_.received(bytes, session_.phase(), pending_.requests > 0, batch_started_);
  return true;
}

// An answer nearly always fits in the socket's send buffer, so it is sent here and now;
// on_write() then runs in this same handler instead of being queued as a completion, which
// saves a round trip through the io_context's queue (and its lock) per request. What the
// socket does not take at once goes out asynchronously, under the send deadline.
void AsyncConnection::write_output() {
  const std::string& output = session_.output();
  asio::error_code error;
  const std::size_t sent = socket_.write_some(asio::buffer(output), error);
  if ((!error && sent == output.size()) ||
      (error && error != asio::error::would_block && error != asio::error::try_again)) {
    on_write(error, sent);
    return;
  }
  deadline_.sending(Clock::now());
  arm_timer_if_earlier();
  write_rest(sent);
}

// The slow path: the client is not keeping up. One write at a time rather than
// asio::async_write, so that each piece the client takes is reported to the send deadline
// (a reader that keeps --min-rate is never cut; one that stops is, at its deadline).
void AsyncConnection::write_rest(std::size_t sent) {
  const std::string& output = session_.output();
  socket_.async_write_some(
      asio::buffer(output.data() + sent, output.size() - sent),
      [self = shared_from_this(), sent](const asio::error_code& error, std::size_t written) {
        const std::lock_guard write_lock(self->mutex_);
        self->deadline_.sent(written);
        self->closing_on_out_of_memory([&] {
          if (!error && !self->closed_ && sent + written < self->session_.output().size()) {
            self->write_rest(sent + written);
          } else {
            self->on_write(error, sent + written);
          }
        });
      });
}

void AsyncConnection::on_write(const asio::error_code& error, std::size_t bytes) {
  ServerObserver& metrics = host_.metrics();
  metrics.bytes_sent(bytes);
  session_.output_sent(bytes);
  if (error || closed_) {
    close();  // the answers did not reach the client: nothing to report as served
    return;
  }
  const Clock::time_point now = Clock::now();
  deadline_.send_done(now);
  report_feed(metrics, session_.protocol(), pending_, batch_handled_s_);
  if (session_.close_after_flush()) {
    const bool clean_close =
        pending_.error_statuses.empty() && !close_could_reset_answer(socket_.native_handle());
    clean_close ? close() : linger(ReadInFlight::no);
  } else if (host_.stopping() && session_.idle() && !bytes_waiting()) {
    close();  // draining: nothing more was received, so nothing is left unanswered
  } else {
    arm_timer_if_earlier();
    read();
  }
}

// A fault blocks this event-loop thread on purpose, as a slow call in a handler would: that is
// the lesson of /sleep. The lock is let go meanwhile, so that the timer and the shutdown do not
// block a second thread of the loop behind it; the flag tells them a request is in progress.
// Nothing else can run: the read/write chain has no operation in flight.
void AsyncConnection::perform_faults(std::unique_lock<std::mutex>& lock) {
  if (pending_.faults.empty()) {
    return;
  }
  performing_fault_ = true;
  lock.unlock();
  for (const FaultAction& fault : pending_.faults) {
    perform(fault);
  }
  lock.lock();
  performing_fault_ = false;
}

// Asio's deadline pattern: the timer is moved only to an earlier time; when it fires it looks
// at the deadline then in force and waits again if that is later. A keep-alive request read
// and answered whole moves the deadline later, so it costs no timer operation.
void AsyncConnection::arm_timer(Clock::time_point at) {
  timer_at_ = at;
  timer_.expires_at(at);
  timer_.async_wait([self = shared_from_this()](const asio::error_code& error) {
    if (!error) {
      const std::lock_guard lock(self->mutex_);
      self->closing_on_out_of_memory([&self] { self->on_timer(); });
    }
  });
}

void AsyncConnection::arm_timer_if_earlier() {
  if (const Clock::time_point next = deadline_.next().at; next < timer_at_) {
    arm_timer(next);
  }
}

void AsyncConnection::on_timer() {
  const Clock::time_point now = Clock::now();
  // A completion that was already queued when arm_timer() moved the timer: the wait for
  // timer_at_ is still pending, and this one must not act (it would end a lingering close
  // early, resetting the answer it protects).
  if (closed_ || now < timer_at_) {
    return;
  }
  if (lingering_) {
    close();
    return;
  }
  if (performing_fault_) {
    arm_timer(now + kFaultRecheck);
    return;
  }
  const ClientDeadline::Deadline next = deadline_.next();
  if (now >= next.at) {
    time_out(next.kind);
  } else {
    arm_timer(next.at);
  }
}

// The client was too slow. A request it had begun is answered 408, in one attempt: no
// waiting on a client that is already late.
void AsyncConnection::time_out(TimeoutKind kind) {
  ServerObserver& metrics = host_.metrics();
  metrics.connection_timed_out(kind);
  if (kind == TimeoutKind::send) {
    close();
    return;
  }
  const FeedResult result = session_.time_out();
  if (session_.output().empty()) {
    close();
    return;
  }
  asio::error_code error;
  metrics.bytes_sent(socket_.write_some(asio::buffer(session_.output()), error));
  report_feed(metrics, session_.protocol(), result, kUntimed);
  linger(ReadInFlight::yes);  // the timer fired while the read chain waited for the client
}

// After an error answer, or an answer to close with bytes left unread: the client may still
// be sending (a body over the limit, requests it pipelined). Closing
// with unread bytes would reset the connection and could destroy the answer before the
// client reads it, so the sending side is shut and what arrives is dropped until the client
// closes or --linger-timeout passes (nginx's lingering close).
void AsyncConnection::linger(ReadInFlight read_in_flight) {
  lingering_ = true;
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  arm_timer(Clock::now() + host_.options().timeouts.linger);
  if (read_in_flight == ReadInFlight::no) {
    read();  // else that read drops what comes (on_read sees lingering_): one read at a time
  }
}

// Only the read chain closes, through the end of stream it reads after shutdown(SHUT_RD): on
// the shared io_context another thread may have taken a request off the socket already and
// not yet this lock, and that request, unseen here, must still be answered (on_write() then
// closes). A read still waiting takes any bytes queued before the end of stream.
void AsyncConnection::close_if_idle() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    const std::lock_guard lock(self->mutex_);
    // Bytes already received are a request to answer: the pending read takes them, and
    // on_write() closes once nothing more is waiting.
    if (!self->closed_ && !self->performing_fault_ && self->session_.idle() &&
        self->session_.output().empty() && !self->bytes_waiting()) {
      asio::error_code ignored;
      self->socket_.shutdown(asio::ip::tcp::socket::shutdown_receive, ignored);
    }
  });
}

bool AsyncConnection::bytes_waiting() const {
  asio::error_code error;
  return socket_.available(error) > 0;
}

void AsyncConnection::close() {
  if (std::exchange(closed_, true)) {
    return;
  }
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  timer_.cancel();
  host_.connection_ended(this);
}

std::vector<std::shared_ptr<AsyncConnection>> still_open(const OpenConnections& open) {
  std::vector<std::shared_ptr<AsyncConnection>> alive;
  alive.reserve(open.size());
  for (const auto& [raw, weak] : open) {
    if (auto connection = weak.lock()) {
      alive.push_back(std::move(connection));
    }
  }
  return alive;
}

}  // namespace echolab
