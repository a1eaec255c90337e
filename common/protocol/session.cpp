#include "common/protocol/session.hpp"

#include <llhttp.h>

#include <strings.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <new>
#include <string_view>
#include <utility>

namespace echolab {
namespace {

// The fixed body of GET: small, like the TechEmpower plaintext test, so that wrk measures
// the concurrency model rather than the payload.
constexpr std::string_view kGreeting = "Hello, World!";
constexpr std::string_view kFaultsOffBody =
    "fault injection is off: start the server with --fault-injection\n";
constexpr std::string_view kCorruptedGreeting = "Heap smashed!";
static_assert(kCorruptedGreeting.size() == kGreeting.size(), "/corrupt overwrites in place");
constexpr std::string_view kCorruptedBody =
    "overwrote the greeting that every connection of this process answers\n";
constexpr std::string_view kBadMemoryRouteBody =
    "bad memory route: use /leak?prefix=P with 8 to 64 letters and digits, or /corrupt\n";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// The request methods that make a connection HTTP when it starts with "<METHOD> ".
constexpr std::array<std::string_view, 9> kMethodPrefixes = {
    "GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "TRACE ", "CONNECT "};
constexpr std::size_t kSniffBytes = 8;  // the longest prefix, "OPTIONS "

// A buffer grown past this by one large request is given back once that request is done;
// the drivers read in pieces of this size, so everyday traffic never reallocates.
constexpr std::size_t kRetainedBufferBytes = std::size_t{16} * 1024;

// Chunked framing (chunk-size lines, their extensions, leading zeros) may at most double a
// body: without a bound, "1;ext=aaaa..." or an endless run of zeros in a chunk size would
// stream forever inside one request while adding nothing to the body limit.
constexpr std::size_t kFramingAllowance = 2;

// Control lines of the raw protocol ("/sleep?ms=20\n") are short; longer lines are data.
constexpr std::size_t kMaxControlLine = 64;

enum class Connection { implicit, keep_alive, close };

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

void append_number(std::string& out, std::size_t value) {
  std::array<char, 24> digits{};
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
  out.append(digits.data(), end);
}

void append_head(std::string& out, int status, std::size_t content_length, Connection connection,
                 std::string_view extra_headers = {}) {
  out += "HTTP/1.1 ";
  append_number(out, static_cast<std::size_t>(status));
  out += ' ';
  out += reason_phrase(status);
  out += "\r\nServer: echolab\r\nContent-Type: text/plain\r\nContent-Length: ";
  append_number(out, content_length);
  out += "\r\n";
  out += extra_headers;
  if (connection == Connection::keep_alive) {
    out += "Connection: keep-alive\r\n";
  } else if (connection == Connection::close) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
}

Protocol sniff_protocol(std::string_view head) {
  bool could_be_http = false;
  for (const std::string_view prefix : kMethodPrefixes) {
    if (head.size() >= prefix.size()) {
      if (head.starts_with(prefix)) {
        return Protocol::http;
      }
    } else if (prefix.starts_with(head)) {
      could_be_http = true;
    }
  }
  return could_be_http ? Protocol::undecided : Protocol::raw;
}

std::string_view as_view(std::span<const char> bytes) { return {bytes.data(), bytes.size()}; }

// The greeting every GET of the process answers, in one heap block that all its connections
// read: the shared state that /corrupt overwrites, so that a corruption shows as a wrong
// answer on every connection that shares the block, never as a crash. A forked process gets
// its own copy, so the corruption stays within the process. Relaxed atomics, because a
// corruption races with the answers of other threads by design; a torn greeting is a
// corrupted one all the same.
class SharedGreeting {
 public:
  using Bytes = std::array<char, kGreeting.size()>;

  static SharedGreeting& of_this_process() {
    // Never freed: detached connection threads may still answer while the process exits.
    static auto* const greeting = new SharedGreeting();  // NOLINT(cppcoreguidelines-owning-memory)
    return *greeting;
  }

  [[nodiscard]] Bytes read() const {
    Bytes bytes{};
    std::ranges::transform(bytes_, bytes.begin(), [](const std::atomic<char>& byte) {
      return byte.load(std::memory_order_relaxed);
    });
    return bytes;
  }

  void overwrite(std::string_view with) {
    for (std::size_t i = 0; i < bytes_.size(); ++i) {
      bytes_.at(i).store(with.at(i), std::memory_order_relaxed);
    }
  }

 private:
  SharedGreeting() { overwrite(kGreeting); }
  std::array<std::atomic<char>, kGreeting.size()> bytes_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 through llhttp. The parser pauses after each header section (to measure it against
// the limit exactly) and after each message (to answer pipelined requests one at a time and to
// stop at a request that closes the connection).
class Session::HttpParser {
 public:
  HttpParser(const ProtocolConfig& config, MemoryScanner scan_memory)
      : config_(config), scan_memory_(scan_memory) {
    llhttp_init(&parser_, HTTP_REQUEST, &settings());
    parser_.data = this;
  }
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;
  HttpParser(HttpParser&&) = delete;
  HttpParser& operator=(HttpParser&&) = delete;
  ~HttpParser() = default;

  void feed(std::span<const char> input, std::string& out, FeedResult& result, bool& close) {
    out_ = &out;
    result_ = &result;
    // After a pause at the end of a header section the parser may still owe a callback that
    // needs no more bytes (message_complete of a request without body): run it once more.
    bool owes_callback = false;
    while ((!input.empty() || owes_callback) && !close) {
      const llhttp_errno_t status = llhttp_execute(&parser_, input.data(), input.size());
      const std::size_t consumed =
          status == HPE_OK
              ? input.size()
              : static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - input.data());
      if (in_header_section_) {
        header_bytes_ += consumed;
      } else {
        body_wire_bytes_ += consumed;
      }
      input = input.subspan(consumed);
      owes_callback = false;
      if (status == HPE_PAUSED) {
        llhttp_resume(&parser_);
        owes_callback = pause_ == Pause::headers_complete;
        close = after_pause();
      } else if (status != HPE_OK) {
        close = true;
        answer_error(error_status_ != 0 ? error_status_ : 400,
                     error_status_ != 0 ? std::string_view{} : llhttp_get_error_reason(&parser_));
      } else if (in_header_section_ && header_bytes_ > config_.limits.max_header_bytes) {
        close = true;
        answer_error(431);
      } else if (!in_header_section_ && body_wire_bytes_ > max_body_wire_bytes()) {
        close = true;
        answer_error(413, "chunked framing larger than the body allows");
      }
    }
  }

  [[nodiscard]] RequestPhase phase() const {
    if (!in_header_section_) {
      return RequestPhase::body;
    }
    return header_bytes_ == 0 ? RequestPhase::idle : RequestPhase::header;
  }

  // A request begun and not finished in time gets 408; between requests there is no answer.
  void time_out(std::string& out, FeedResult& result) {
    if (phase() != RequestPhase::idle) {
      out_ = &out;
      result_ = &result;
      answer_error(408);
    }
  }

  void end_keep_alive() { keep_alive_ended_ = true; }

  // After an allocation failure: the body that grew is dropped before anything else.
  void release_body() { std::string().swap(body_); }

 private:
  enum class Pause { none, headers_complete, message_complete };

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t shared = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_url = &HttpParser::guarded<&HttpParser::on_url>;
      s.on_header_field = &HttpParser::guarded<&HttpParser::on_header_field>;
      s.on_header_value = &HttpParser::guarded<&HttpParser::on_header_value>;
      s.on_headers_complete = &HttpParser::on_headers_complete;
      s.on_chunk_header = &HttpParser::on_chunk_header;
      s.on_body = &HttpParser::guarded<&HttpParser::on_body>;
      s.on_message_complete = &HttpParser::on_message_complete;
      return s;
    }();
    return shared;
  }

  static HttpParser& self(llhttp_t* parser) { return *static_cast<HttpParser*>(parser->data); }

  // llhttp is C: no exception may unwind through its frames. A callback that runs out of
  // memory stops the parser through its own error path instead, and the request is answered
  // 503 after the answers already queued in this feed (which an exception reaching
  // Session::feed would drop). The callbacks without data allocate nothing and are noexcept.
  template <int (HttpParser::*callback)(const char*, std::size_t)>
  static int guarded(llhttp_t* parser, const char* at, std::size_t length) noexcept {
    HttpParser& p = self(parser);
    try {
      return (p.*callback)(at, length);
    } catch (const std::bad_alloc&) {
      p.release_body();
      return p.fail_with(503);
    }
  }

  // Returns HPE_USER to stop the parser with `status` as the answer.
  int fail_with(int status) {
    error_status_ = status;
    return HPE_USER;
  }

  int on_url(const char* at, std::size_t length) {
    if (url_.size() + length > config_.limits.max_header_bytes) {
      return fail_with(431);
    }
    url_.append(at, length);
    return HPE_OK;
  }

  // Trailers are header fields after the body: they share the header section's limit.
  int count_trailer(std::size_t length) {
    trailer_bytes_ += length;
    return trailer_bytes_ > config_.limits.max_header_bytes ? fail_with(431) : HPE_OK;
  }

  int on_header_field(const char* at, std::size_t length) {
    if (in_trailers_) {
      return count_trailer(length);
    }
    if (field_complete_) {
      field_.clear();
      field_complete_ = false;
    }
    // Only short names matter ("expect"); longer ones are kept as a prefix, never grown.
    field_.append(at, std::min(length, 16 - std::min<std::size_t>(16, field_.size())));
    return HPE_OK;
  }

  int on_header_value(const char* at, std::size_t length) {
    if (in_trailers_) {
      return count_trailer(length);
    }
    field_complete_ = true;
    if (field_.size() == 6 && strncasecmp(field_.data(), "expect", 6) == 0) {
      expect_continue_ = length >= 12 && strncasecmp(at, "100-continue", 12) == 0;
    }
    return HPE_OK;
  }

  static int on_headers_complete(llhttp_t* parser) noexcept {
    HttpParser& p = self(parser);
    p.pause_ = Pause::headers_complete;
    return HPE_PAUSED;
  }

  // The chunk of size zero ends the body; what follows it are trailers.
  static int on_chunk_header(llhttp_t* parser) noexcept {
    HttpParser& p = self(parser);
    p.in_trailers_ = parser->content_length == 0;
    return HPE_OK;
  }

  int on_body(const char* at, std::size_t length) {
    body_bytes_ += length;
    if (body_bytes_ > config_.limits.max_body_bytes) {
      return fail_with(413);
    }
    if (echo_body_) {
      body_.append(at, length);
    }
    return HPE_OK;
  }

  static int on_message_complete(llhttp_t* parser) noexcept {
    HttpParser& p = self(parser);
    p.pause_ = Pause::message_complete;
    return HPE_PAUSED;
  }

  // Acts on the pause that just happened; returns true when the connection must close.
  bool after_pause() {
    const Pause pause = std::exchange(pause_, Pause::none);
    if (pause == Pause::headers_complete) {
      return headers_complete();
    }
    if (pause == Pause::message_complete) {
      return message_complete();
    }
    return false;
  }

  bool headers_complete() {
    in_header_section_ = false;
    if (header_bytes_ > config_.limits.max_header_bytes) {
      answer_error(431);
      return true;
    }
    const auto method = static_cast<llhttp_method_t>(parser_.method);
    if (method == HTTP_CONNECT) {
      answer_error(405);
      return true;
    }
    // No protocol upgrade is offered: the request is answered, then the connection closes
    // (llhttp would hand the bytes after it to an upgraded protocol).
    close_after_message_ = parser_.upgrade != 0;
    if ((parser_.flags & F_CONTENT_LENGTH) != 0 &&
        parser_.content_length > config_.limits.max_body_bytes) {
      answer_error(413);
      return true;
    }
    echo_body_ = method == HTTP_POST || method == HTTP_PUT;
    if (expect_continue_) {
      *out_ += kContinue;
    }
    return false;
  }

  bool message_complete() {
    const bool keep_alive = llhttp_should_keep_alive(&parser_) != 0 && !close_after_message_ &&
                            !count_request_reaches_the_cap();
    const Connection connection = connection_header(keep_alive);
    respond(static_cast<llhttp_method_t>(parser_.method), connection);
    reset_message();
    return !keep_alive;
  }

  // True when this request is the connection's last: the Nth of --max-requests-per-connection,
  // or one read after --max-connection-lifetime.
  bool count_request_reaches_the_cap() {
    ++requests_answered_;
    const std::size_t cap = config_.limits.max_requests_per_connection;
    return keep_alive_ended_ || (cap != 0 && requests_answered_ >= cap);
  }

  // HTTP/1.1 keeps alive unless told; HTTP/1.0 only when asked, and then says so.
  [[nodiscard]] Connection connection_header(bool keep_alive) const {
    if (!keep_alive) {
      return Connection::close;
    }
    return parser_.http_major == 1 && parser_.http_minor == 0 ? Connection::keep_alive
                                                              : Connection::implicit;
  }

  void respond(llhttp_method_t method, Connection connection) {
    ++result_->requests;
    if (method == HTTP_POST || method == HTTP_PUT) {
      append_head(*out_, 200, body_.size(), connection);
      *out_ += body_;
      return;
    }
    if (method != HTTP_GET && method != HTTP_HEAD) {
      answer(405, "method not allowed: GET, HEAD, POST and PUT are served\n", connection,
             "Allow: GET, HEAD, POST, PUT\r\n");
      return;
    }
    const ParsedFault fault = parse_fault_route(url_);
    const ParsedMemoryRoute memory = parse_memory_route(url_);
    if (fault.route == FaultRoute::not_a_fault && memory.route == MemoryRoute::not_a_memory_route) {
      answer_greeting(method, connection);
    } else if (!config_.fault_injection) {
      answer(404, kFaultsOffBody, connection);
    } else if (memory.route != MemoryRoute::not_a_memory_route) {
      answer_memory_route(memory, connection);
    } else if (fault.route == FaultRoute::invalid) {
      answer(400, "bad fault parameter: use /sleep?ms=0..60000 or /burn?us=0..10000000\n",
             connection);
    } else {
      result_->faults.push_back(fault.action);
      answer_greeting(method, connection);
    }
  }

  void answer_greeting(llhttp_method_t method, Connection connection) {
    const SharedGreeting::Bytes greeting = SharedGreeting::of_this_process().read();
    answer(200, std::string_view(greeting.data(), greeting.size()), connection, {},
           method == HTTP_HEAD);
  }

  // What a compromised handler does, done on the thread serving the request, so that it
  // reaches exactly the memory this concurrency model gives that thread.
  void answer_memory_route(const ParsedMemoryRoute& memory, Connection connection) {
    switch (memory.route) {
      case MemoryRoute::corrupt:
        SharedGreeting::of_this_process().overwrite(kCorruptedGreeting);
        answer(200, kCorruptedBody, connection);
        return;
      case MemoryRoute::leak:
        if (scan_memory_ == nullptr) {
          answer(501, "this server has no memory scanner\n", connection);
        } else {
          answer(200, scan_memory_(memory.token_prefix), connection);
        }
        return;
      case MemoryRoute::invalid:
      case MemoryRoute::not_a_memory_route:
        answer(400, kBadMemoryRouteBody, connection);
        return;
    }
  }

  void answer(int status, std::string_view body, Connection connection,
              std::string_view extra_headers = {}, bool head_only = false) {
    if (status >= 300) {
      result_->error_statuses.push_back(status);
    }
    append_head(*out_, status, body.size(), connection, extra_headers);
    if (!head_only) {
      *out_ += body;
    }
  }

  // A request that ends the connection: a short body saying why, then close.
  void answer_error(int status, std::string_view detail = {}) {
    ++result_->requests;
    std::string body(reason_phrase(status));
    if (!detail.empty()) {
      body += ": ";
      body += detail;
    }
    body += '\n';
    answer(status, body, Connection::close);
  }

  [[nodiscard]] std::size_t max_body_wire_bytes() const {
    return kFramingAllowance * config_.limits.max_body_bytes + config_.limits.max_header_bytes;
  }

  void reset_message() {
    url_.clear();
    if (body_.capacity() > kRetainedBufferBytes) {
      release_body();
    } else {
      body_.clear();
    }
    field_.clear();
    field_complete_ = false;
    expect_continue_ = false;
    echo_body_ = false;
    close_after_message_ = false;
    in_header_section_ = true;
    header_bytes_ = 0;
    body_bytes_ = 0;
    body_wire_bytes_ = 0;
    trailer_bytes_ = 0;
    in_trailers_ = false;
  }

  const ProtocolConfig& config_;
  MemoryScanner scan_memory_;
  llhttp_t parser_{};
  std::string* out_ = nullptr;
  FeedResult* result_ = nullptr;
  Pause pause_ = Pause::none;
  int error_status_ = 0;
  bool in_header_section_ = true;
  std::size_t header_bytes_ = 0;  // of the current request, request line included
  std::size_t body_bytes_ = 0;
  std::size_t body_wire_bytes_ = 0;  // the body as it came: chunk framing and trailers too
  std::size_t trailer_bytes_ = 0;
  bool in_trailers_ = false;
  std::string url_;
  std::string field_;
  bool field_complete_ = false;
  bool expect_continue_ = false;
  bool echo_body_ = false;
  bool close_after_message_ = false;
  std::string body_;
  std::size_t requests_answered_ = 0;  // on this connection, for the cap
  bool keep_alive_ended_ = false;
};

// ---------------------------------------------------------------------------------------------
// Raw TCP echo: every byte comes back as sent. With fault injection on, a line that is exactly
// a fault route ("/crash", "/sleep?ms=N", "/burn?us=N") also triggers it; it is echoed too.
class Session::RawEcho {
 public:
  explicit RawEcho(const ProtocolConfig& config) : faults_enabled_(config.fault_injection) {}

  void feed(std::span<const char> input, std::string& out, FeedResult& result) {
    out.append(input.data(), input.size());
    ++result.requests;
    if (faults_enabled_) {
      scan_control_lines(as_view(input), result);
    }
  }

 private:
  void scan_control_lines(std::string_view input, FeedResult& result) {
    while (!input.empty()) {
      const auto newline = input.find('\n');
      const std::string_view piece = input.substr(0, newline);
      if (line_.size() + piece.size() <= kMaxControlLine) {
        line_ += piece;
      } else {
        line_too_long_ = true;
      }
      if (newline == std::string_view::npos) {
        return;
      }
      end_line(result);
      input.remove_prefix(newline + 1);
    }
  }

  void end_line(FeedResult& result) {
    std::string_view line = line_;
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
    }
    if (!line_too_long_) {
      if (const ParsedFault fault = parse_fault_route(line); fault.route == FaultRoute::valid) {
        result.faults.push_back(fault.action);
      }
    }
    line_.clear();
    line_too_long_ = false;
  }

  bool faults_enabled_;
  std::string line_;
  bool line_too_long_ = false;
};

// ---------------------------------------------------------------------------------------------

Session::Session(const ProtocolConfig& config, MemoryScanner scan_memory)
    : config_(std::make_unique<const ProtocolConfig>(config)), scan_memory_(scan_memory) {
  if (config.mode == ProtocolMode::http) {
    start(Protocol::http);
  } else if (config.mode == ProtocolMode::raw) {
    start(Protocol::raw);
  }
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::start(Protocol protocol) {
  protocol_ = protocol;
  if (protocol == Protocol::http) {
    http_ = std::make_unique<HttpParser>(*config_, scan_memory_);
    if (keep_alive_ended_) {
      http_->end_keep_alive();
    }
  } else {
    raw_ = std::make_unique<RawEcho>(*config_);
  }
}

FeedResult Session::feed(std::span<const char> input) {
  FeedResult result;
  if (close_after_flush_ || input.empty()) {
    return result;
  }
  try {
    feed_input(input, result);
  } catch (const std::bad_alloc&) {
    answer_out_of_memory(result);
  }
  return result;
}

// Out of memory in this connection: whatever it holds is dropped, and the answer is one
// short 503 (raw echo has no way to say it, so the connection just closes). If even that
// allocation fails, the exception reaches the driver, which closes the connection.
void Session::answer_out_of_memory(FeedResult& result) {
  std::string().swap(output_);
  if (http_) {
    http_->release_body();
  }
  close_after_flush_ = true;
  result.faults.clear();
  if (protocol_ == Protocol::http) {
    output_ =
        "HTTP/1.1 503 Service Unavailable\r\nServer: echolab\r\nContent-Type: text/plain\r\n"
        "Content-Length: 14\r\nConnection: close\r\n\r\nout of memory\n";
    ++result.requests;
    result.error_statuses.push_back(503);
  }
}

void Session::feed_input(std::span<const char> input, FeedResult& result) {
  if (protocol_ == Protocol::undecided) {
    if (!detect_protocol(input)) {
      return;
    }
    if (!detect_buffer_.empty()) {
      const std::string held = std::move(detect_buffer_);
      detect_buffer_.clear();
      dispatch(held, result);
    }
  }
  dispatch(input, result);
}

bool Session::detect_protocol(std::span<const char>& input) {
  std::string_view head = as_view(input);
  if (!detect_buffer_.empty()) {
    const std::size_t take = std::min(kSniffBytes - detect_buffer_.size(), input.size());
    detect_buffer_.append(input.data(), take);
    input = input.subspan(take);
    head = detect_buffer_;
  }
  const Protocol detected = sniff_protocol(head);
  if (detected == Protocol::undecided) {
    detect_buffer_.append(input.data(), input.size());
    input = {};
    return false;
  }
  start(detected);
  return true;
}

void Session::dispatch(std::span<const char> input, FeedResult& result) {
  if (input.empty() || close_after_flush_) {
    return;
  }
  if (http_) {
    http_->feed(input, output_, result, close_after_flush_);
  } else {
    raw_->feed(input, output_, result);
  }
}

void Session::output_sent(std::size_t bytes) {
  if (bytes >= output_.size()) {
    output_.clear();
    release_large_output();
  } else {
    output_.erase(0, bytes);
  }
}

void Session::release_large_output() {
  if (output_.capacity() > kRetainedBufferBytes) {
    std::string().swap(output_);
  }
}

RequestPhase Session::phase() const {
  if (http_) {
    return http_->phase();
  }
  // Raw echo has no requests: a connection is between them whenever nothing is held back.
  return detect_buffer_.empty() ? RequestPhase::idle : RequestPhase::header;
}

void Session::end_keep_alive() {
  keep_alive_ended_ = true;
  if (http_) {
    http_->end_keep_alive();
  }
}

FeedResult Session::time_out() {
  FeedResult result;
  if (!close_after_flush_) {
    close_after_flush_ = true;
    if (http_) {
      http_->time_out(output_, result);
    }
  }
  return result;
}

}  // namespace echolab
