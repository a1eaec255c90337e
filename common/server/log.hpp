// One logfmt line per lifecycle event on stderr, written with a single write() so lines
// from many processes and threads never interleave.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace echolab {

using LogValue = std::variant<std::string_view, std::int64_t, double, bool>;

struct LogField {
  std::string_view key;
  LogValue value;
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
  template <typename Int>
  requires std::is_integral_v<Int> LogField(std::string_view k, Int v)
      : key(k), value(static_cast<std::int64_t>(v)) {}
};

// Sets the `model=` field every line carries (once, at start).
void set_log_model(std::string_view model);

// ts=... level=info model=threads event=start listen=0.0.0.0:8082 ...
void log_event(std::string_view event, std::initializer_list<LogField> fields = {});
void log_error(std::string_view event, std::initializer_list<LogField> fields = {});

// Formats one line (without writing it); exposed for tests.
std::string format_log_line(std::string_view level, std::string_view event,
                            std::initializer_list<LogField> fields);

}  // namespace echolab
