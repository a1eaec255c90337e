#include "loadgen/json_writer.hpp"

#include <array>
#include <charconv>
#include <cmath>

namespace echolab::load {

JsonWriter& JsonWriter::begin_object() {
  out_ << '{';
  ++depth_;
  first_in_object_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_object(std::string_view name) {
  key(name);
  return begin_object();
}

JsonWriter& JsonWriter::end_object() {
  --depth_;
  if (!first_in_object_) {
    newline();
  }
  out_ << '}';
  first_in_object_ = false;
  if (depth_ == 0) {
    out_ << '\n';
  }
  return *this;
}

JsonWriter& JsonWriter::field(std::string_view name, std::string_view value) {
  key(name);
  string(value);
  return *this;
}

JsonWriter& JsonWriter::field(std::string_view name, double value) {
  if (!std::isfinite(value)) {
    return null_field(name);
  }
  key(name);
  std::array<char, 64> text{};
  const auto result = std::to_chars(text.data(), text.data() + text.size(), value);
  out_.write(text.data(), result.ptr - text.data());
  return *this;
}

JsonWriter& JsonWriter::field(std::string_view name, std::uint64_t value) {
  key(name);
  out_ << value;
  return *this;
}

JsonWriter& JsonWriter::field(std::string_view name, bool value) {
  key(name);
  out_ << (value ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::null_field(std::string_view name) {
  key(name);
  out_ << "null";
  return *this;
}

void JsonWriter::key(std::string_view name) {
  if (!first_in_object_) {
    out_ << ',';
  }
  first_in_object_ = false;
  newline();
  string(name);
  out_ << ": ";
}

void JsonWriter::newline() {
  out_ << '\n';
  for (int i = 0; i < depth_; ++i) {
    out_ << "  ";
  }
}

void JsonWriter::string(std::string_view text) {
  out_ << '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out_ << "\\\"";
        break;
      case '\\':
        out_ << "\\\\";
        break;
      case '\n':
        out_ << "\\n";
        break;
      case '\r':
        out_ << "\\r";
        break;
      case '\t':
        out_ << "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          constexpr std::string_view kHex = "0123456789abcdef";
          out_ << "\\u00" << kHex[(c >> 4) & 0xf] << kHex[c & 0xf];
        } else {
          out_ << c;
        }
    }
  }
  out_ << '"';
}

}  // namespace echolab::load
