// A whole run of echolab-load: checks the limits, starts the threads, prints the progress
// line, stops on time or on SIGINT/SIGTERM, and reports.
#pragma once

#include "loadgen/load_options.hpp"

namespace echolab::load {

// The process exit status: 0 no error counted, 1 errors counted, 2 the run could not start
// (a limit too low, an unknown host, an unwritable --json file).
int run_load(const LoadOptions& options);

}  // namespace echolab::load
