#include "loadgen/reply_checker.hpp"

#include <llhttp.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace echolab::load {
namespace {

constexpr int kStatusOk = 200;

class HttpReplyChecker final : public ReplyChecker {
 public:
  HttpReplyChecker(std::string_view echo, std::size_t max_reply_bytes)
      : echo_(echo), check_body_(!echo.empty()), max_reply_bytes_(max_reply_bytes) {
    restart();
  }

  void restart() override {
    llhttp_init(&parser_, HTTP_RESPONSE, &settings());
    parser_.data = this;
    body_offset_ = 0;
    reply_bytes_ = 0;
  }

  // The parser pauses at the end of each reply, so that the bytes of each are known.
  ReplyScan scan(std::span<const char> bytes) override {
    scan_ = ReplyScan{};
    while (!bytes.empty() && !scan_.bad) {
      const llhttp_errno_t error = llhttp_execute(&parser_, bytes.data(), bytes.size());
      const std::size_t consumed =
          error == HPE_OK ? bytes.size()
                          : static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - bytes.data());
      reply_bytes_ += consumed;
      bytes = bytes.subspan(consumed);
      if (error == HPE_PAUSED) {
        llhttp_resume(&parser_);
        complete_reply();
      } else if (error != HPE_OK && !scan_.bad) {
        fail(std::string("malformed reply: ") + llhttp_errno_name(error) + " " +
             llhttp_get_error_reason(&parser_));
      } else if (error == HPE_OK) {
        check_size();
      }
    }
    return std::move(scan_);
  }

  ReplyScan scan_end() override {
    scan_ = ReplyScan{};
    // Anything but a completed close-delimited body is left to the caller, which knows
    // whether a reply was still owed.
    if (llhttp_finish(&parser_) == HPE_PAUSED) {
      llhttp_resume(&parser_);
      complete_reply();
    }
    return std::move(scan_);
  }

 private:
  static HttpReplyChecker& of(llhttp_t* parser) {
    return *static_cast<HttpReplyChecker*>(parser->data);
  }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t callbacks = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = [](llhttp_t* parser) { return of(parser).on_message_begin(); };
      s.on_headers_complete = [](llhttp_t* parser) { return of(parser).on_headers_complete(); };
      s.on_body = [](llhttp_t* parser, const char* at, std::size_t length) {
        return of(parser).on_body(std::string_view(at, length));
      };
      s.on_message_complete = [](llhttp_t* parser) { return of(parser).on_message_complete(); };
      return s;
    }();
    return callbacks;
  }

  int on_message_begin() {
    body_offset_ = 0;
    return 0;
  }

  int on_headers_complete() {
    if (parser_.status_code != kStatusOk) {
      return fail("status " + std::to_string(parser_.status_code));
    }
    return 0;
  }

  int on_body(std::string_view chunk) {
    if (check_body_) {
      const std::string_view expected = echo_.substr(std::min(body_offset_, echo_.size()));
      if (chunk.size() > expected.size()) {
        return fail("body longer than the " + std::to_string(echo_.size()) + " bytes sent");
      }
      if (chunk != expected.substr(0, chunk.size())) {
        return fail("body differs from the payload sent");
      }
    }
    body_offset_ += chunk.size();
    return 0;
  }

  int on_message_complete() {
    if (check_body_ && body_offset_ != echo_.size()) {
      return fail("body of " + std::to_string(body_offset_) + " bytes, " +
                  std::to_string(echo_.size()) + " sent");
    }
    return HPE_PAUSED;  // scan() counts the reply once it knows where it ended
  }

  void complete_reply() {
    if (!check_size()) {
      return;
    }
    ++scan_.replies;
    scan_.server_closes = llhttp_should_keep_alive(&parser_) == 0;
    reply_bytes_ = 0;
  }

  // False (and the scan bad) when the reply so far is over the limit.
  bool check_size() {
    if (reply_bytes_ <= max_reply_bytes_) {
      return true;
    }
    fail("reply over " + std::to_string(max_reply_bytes_) + " bytes (--max-response-bytes)");
    scan_.oversized = true;
    return false;
  }

  int fail(std::string problem) {
    scan_.bad = true;
    scan_.problem = std::move(problem);
    return -1;  // stops llhttp_execute
  }

  llhttp_t parser_{};
  std::string_view echo_;
  bool check_body_;
  std::size_t max_reply_bytes_;
  std::size_t body_offset_ = 0;
  std::size_t reply_bytes_ = 0;  // of the reply being read, head included
  ReplyScan scan_;
};

class RawEchoChecker final : public ReplyChecker {
 public:
  explicit RawEchoChecker(std::string_view echo) : echo_(echo) {}

  void restart() override { offset_ = 0; }

  ReplyScan scan(std::span<const char> bytes) override {
    ReplyScan scan;
    while (!bytes.empty()) {
      const std::size_t length = std::min(bytes.size(), echo_.size() - offset_);
      if (std::memcmp(bytes.data(), echo_.data() + offset_, length) != 0) {
        const auto got =
            std::mismatch(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length),
                          echo_.begin() + static_cast<std::ptrdiff_t>(offset_))
                .first;
        const auto position = offset_ + static_cast<std::size_t>(got - bytes.begin());
        scan.bad = true;
        scan.problem = "echo differs from the payload at byte " + std::to_string(position);
        return scan;
      }
      offset_ += length;
      bytes = bytes.subspan(length);
      if (offset_ == echo_.size()) {
        offset_ = 0;
        ++scan.replies;
      }
    }
    return scan;
  }

  ReplyScan scan_end() override { return {}; }

 private:
  std::string_view echo_;
  std::size_t offset_ = 0;
};

}  // namespace

std::unique_ptr<ReplyChecker> make_reply_checker(WireProtocol protocol, std::string_view echo,
                                                 std::size_t max_reply_bytes) {
  if (protocol == WireProtocol::raw) {
    return std::make_unique<RawEchoChecker>(echo);
  }
  return std::make_unique<HttpReplyChecker>(echo, max_reply_bytes);
}

std::optional<int> http_status_of(std::string_view first_bytes) {
  // "HTTP/1.x NNN": the digits are at offsets 9-11.
  constexpr std::string_view kPrefix = "HTTP/1.";
  constexpr std::size_t kStatusAt = 9;
  constexpr std::size_t kStatusDigits = 3;
  if (first_bytes.size() < kStatusAt + kStatusDigits || !first_bytes.starts_with(kPrefix) ||
      first_bytes[kStatusAt - 1] != ' ') {
    return std::nullopt;
  }
  int status = 0;
  const char* digits = first_bytes.data() + kStatusAt;
  const auto [end, error] = std::from_chars(digits, digits + kStatusDigits, status);
  if (error != std::errc() || end != digits + kStatusDigits || status < 100) {
    return std::nullopt;
  }
  return status;
}

}  // namespace echolab::load
