// echolab-load: drives an echolab server (or any HTTP or TCP echo server) with thousands of
// connections, closed or open loop, and reports latency percentiles and counted errors.
#include <iostream>
#include <string>
#include <vector>

#include "loadgen/load_options.hpp"
#include "loadgen/load_run.hpp"
#include "loadgen/result_merge.hpp"

int main(int argc, char** argv) {
  const std::vector<std::string> arguments(argv + 1, argv + argc);
  if (!arguments.empty() && arguments.front() == "merge") {
    return echolab::load::run_merge({arguments.begin() + 1, arguments.end()});
  }
  const auto command_line = echolab::load::parse_command_line(arguments);
  if (!command_line.options) {
    if (command_line.exit_code == 0) {
      std::cout << command_line.message;
    } else {
      std::cerr << "echolab-load: " << command_line.message << '\n';
    }
    return command_line.exit_code;
  }
  return echolab::load::run_load(*command_line.options);
}
