// Writes one JSON object, with nested objects, in the order the fields are added. The probes
// print their figures through it so the compare runner can read them with any JSON parser.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace echolab::probe {

class JsonWriter {
 public:
  JsonWriter();

  void begin_object(std::string_view key);
  void end_object();

  // Numbers are rounded to three decimals; a value that is not finite is written as null.
  void add_number(std::string_view key, double value);
  void add_integer(std::string_view key, long long value);
  void add_bool(std::string_view key, bool value);
  void add_string(std::string_view key, std::string_view value);
  void add_null(std::string_view key);

  // The finished document; every object opened must have been closed.
  std::string str() const;

 private:
  void start_member(std::string_view key);
  // A line break and two spaces per level of nesting.
  void new_line(std::size_t depth);

  std::string out_;
  // One entry per open object: whether it has a member yet (to place the commas).
  std::vector<bool> has_members_;
};

// The JSON form of `text` between quotes, with the escapes JSON requires.
std::string json_quoted(std::string_view text);

}  // namespace echolab::probe
