#include "common/server/log.hpp"

#include <gtest/gtest.h>

namespace echolab {
namespace {

TEST(Log, FormatsOneLogfmtLine) {
  set_log_model("threads");
  const std::string line =
      format_log_line("info", "start", {{"listen", "0.0.0.0:8082"}, {"threads", 4}, {"ok", true}});
  EXPECT_TRUE(line.starts_with("ts=")) << line;
  EXPECT_NE(line.find(" level=info model=threads pid="), std::string::npos) << line;
  EXPECT_TRUE(line.ends_with(" event=start listen=0.0.0.0:8082 threads=4 ok=true")) << line;
}

TEST(Log, QuotesValuesWithSpacesAndNeverBreaksTheLine) {
  const std::string line = format_log_line("error", "fatal", {{"error", "bad \"x\"\nnext"}});
  EXPECT_TRUE(line.ends_with(R"(error="bad \"x\" next")")) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace echolab
