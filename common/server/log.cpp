#include "common/server/log.hpp"

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <iostream>

namespace echolab {
namespace {

std::string log_model = "echolab";  // set once at start, before any thread or fork

bool needs_quotes(std::string_view text) {
  return text.empty() || text.find_first_of(" \"=\t\n") != std::string_view::npos;
}

void append_value(std::string& line, const LogValue& value) {
  if (const auto* text = std::get_if<std::string_view>(&value)) {
    if (!needs_quotes(*text)) {
      line += *text;
      return;
    }
    line += '"';
    for (const char c : *text) {
      if (c == '"' || c == '\\') {
        line += '\\';
      }
      line += c == '\n' ? ' ' : c;
    }
    line += '"';
  } else if (const auto* number = std::get_if<std::int64_t>(&value)) {
    line += std::to_string(*number);
  } else if (const auto* real = std::get_if<double>(&value)) {
    char buffer[32];
    const int length = std::snprintf(buffer, sizeof buffer, "%.6g", *real);
    line.append(buffer, static_cast<std::size_t>(length));
  } else {
    line += std::get<bool>(value) ? "true" : "false";
  }
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  const std::size_t length = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  static_cast<void>(
      std::snprintf(buffer + length, sizeof buffer - length, ".%03dZ", static_cast<int>(millis)));
  return buffer;
}

void write_line(std::string_view level, std::string_view event,
                std::initializer_list<LogField> fields) {
  std::string line = format_log_line(level, event, fields);
  line += '\n';
  // One write() per line: lines from many processes sharing stderr stay whole.
  [[maybe_unused]] const auto written = write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace

void set_log_model(std::string_view model) { log_model = model; }

std::string format_log_line(std::string_view level, std::string_view event,
                            std::initializer_list<LogField> fields) {
  std::string line = "ts=" + timestamp();
  line += " level=";
  line += level;
  line += " model=";
  line += log_model;
  line += " pid=" + std::to_string(getpid());
  line += " event=";
  line += event;
  for (const LogField& field : fields) {
    line += ' ';
    line += field.key;
    line += '=';
    append_value(line, field.value);
  }
  return line;
}

void log_event(std::string_view event, std::initializer_list<LogField> fields) {
  write_line("info", event, fields);
}

void log_error(std::string_view event, std::initializer_list<LogField> fields) {
  write_line("error", event, fields);
}

}  // namespace echolab
