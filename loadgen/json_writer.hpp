// A small streaming JSON writer: objects, strings, numbers, booleans and null, indented,
// with the commas and escapes handled. Enough for echolab-load's result file.
#pragma once

#include <cstdint>
#include <ostream>
#include <string_view>

namespace echolab::load {

class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}

  // Top-level object (no key), or a member object of the current one.
  JsonWriter& begin_object();
  JsonWriter& begin_object(std::string_view key);
  JsonWriter& end_object();

  JsonWriter& field(std::string_view key, std::string_view value);
  JsonWriter& field(std::string_view key, const char* value) {
    return field(key, std::string_view(value));
  }
  JsonWriter& field(std::string_view key, double value);  // null when not finite
  JsonWriter& field(std::string_view key, std::uint64_t value);
  JsonWriter& field(std::string_view key, bool value);
  JsonWriter& null_field(std::string_view key);

 private:
  void key(std::string_view name);
  void string(std::string_view text);
  void newline();

  std::ostream& out_;
  int depth_ = 0;
  bool first_in_object_ = true;
};

}  // namespace echolab::load
