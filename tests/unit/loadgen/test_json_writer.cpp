#include "loadgen/json_writer.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

namespace echolab::load {
namespace {

std::string compact(const std::string& json) {
  std::string out;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"' && (i == 0 || json[i - 1] != '\\')) {
      in_string = !in_string;
    }
    if (in_string || (c != ' ' && c != '\n')) {
      out += c;
    }
  }
  return out;
}

TEST(JsonWriter, WritesNestedObjectsWithCommas) {
  std::ostringstream out;
  JsonWriter json(out);
  json.begin_object();
  json.field("name", "echolab");
  json.field("count", std::uint64_t{3});
  json.begin_object("inner").field("ok", true).null_field("none").end_object();
  json.begin_object("empty").end_object();
  json.field("ratio", 0.5);
  json.end_object();
  EXPECT_EQ(
      compact(out.str()),
      R"({"name":"echolab","count":3,"inner":{"ok":true,"none":null},"empty":{},"ratio":0.5})");
}

TEST(JsonWriter, EscapesStrings) {
  std::ostringstream out;
  JsonWriter json(out);
  json.begin_object().field("text", "a\"b\\c\nd\x01").end_object();
  EXPECT_EQ(compact(out.str()), R"({"text":"a\"b\\c\nd\u0001"})");
}

TEST(JsonWriter, NonFiniteNumbersBecomeNull) {
  std::ostringstream out;
  JsonWriter json(out);
  json.begin_object().field("nan", std::nan("")).field("inf", HUGE_VAL).end_object();
  EXPECT_EQ(compact(out.str()), R"({"nan":null,"inf":null})");
}

}  // namespace
}  // namespace echolab::load
