#include "loadgen/probes/json_writer.hpp"

#include <charconv>
#include <cmath>

#include "loadgen/probes/probe_error.hpp"

namespace echolab::probe {

JsonWriter::JsonWriter() {
  out_ = "{";
  has_members_.push_back(false);
}

void JsonWriter::begin_object(std::string_view key) {
  start_member(key);
  out_ += '{';
  has_members_.push_back(false);
}

void JsonWriter::end_object() {
  if (has_members_.size() <= 1) throw ProbeError("JsonWriter: end_object without begin_object");
  const bool had_members = has_members_.back();
  has_members_.pop_back();
  if (had_members) new_line(has_members_.size());
  out_ += '}';
}

void JsonWriter::add_number(std::string_view key, double value) {
  if (!std::isfinite(value)) {
    add_null(key);
    return;
  }
  start_member(key);
  const double rounded = std::round(value * 1000.0) / 1000.0;
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, rounded);
  out_.append(buffer, result.ptr);
}

void JsonWriter::add_integer(std::string_view key, long long value) {
  start_member(key);
  out_ += std::to_string(value);
}

void JsonWriter::add_bool(std::string_view key, bool value) {
  start_member(key);
  out_ += value ? "true" : "false";
}

void JsonWriter::add_string(std::string_view key, std::string_view value) {
  start_member(key);
  out_ += json_quoted(value);
}

void JsonWriter::add_null(std::string_view key) {
  start_member(key);
  out_ += "null";
}

std::string JsonWriter::str() const {
  if (has_members_.size() != 1) throw ProbeError("JsonWriter: an object was left open");
  return out_ + (has_members_.back() ? "\n}\n" : "}\n");
}

void JsonWriter::start_member(std::string_view key) {
  if (has_members_.back()) out_ += ',';
  has_members_.back() = true;
  new_line(has_members_.size());
  out_ += json_quoted(key);
  out_ += ": ";
}

void JsonWriter::new_line(std::size_t depth) {
  out_ += '\n';
  out_.append(2 * depth, ' ');
}

std::string json_quoted(std::string_view text) {
  std::string quoted = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\t':
        quoted += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          constexpr std::string_view kHexDigits = "0123456789abcdef";
          const auto code = static_cast<unsigned char>(c);
          quoted += "\\u00";
          quoted += kHexDigits[code >> 4];
          quoted += kHexDigits[code & 0xf];
        } else {
          quoted += c;
        }
    }
  }
  quoted += '"';
  return quoted;
}

}  // namespace echolab::probe
