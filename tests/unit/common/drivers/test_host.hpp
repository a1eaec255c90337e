// The server side of the asynchronous driver's tests, as PoolServer is for its connections:
// the options, the metrics, and a count of the connections that ended.
#pragma once

#include <chrono>
#include <new>

#include "common/drivers/async_connection.hpp"
#include "common/metrics/striped_metrics.hpp"
#include "common/server/server_options.hpp"

namespace echolab {

class TestHost final : public AsyncConnectionHost {
 public:
  TestHost() : metrics_(Model::pool) {}

  // Once `out_of_memory` is set, asking for the options fails as an allocation would: the
  // lingering close that follows a 408 asks for its linger time inside the timer's handler.
  [[nodiscard]] const ServerOptions& options() const override {
    if (out_of_memory) {
      throw std::bad_alloc();
    }
    return options_;
  }
  [[nodiscard]] StripedMetrics& metrics() override { return metrics_; }
  [[nodiscard]] bool stopping() const override { return false; }
  void connection_ended(AsyncConnection* /*connection*/) override {
    ++ended;
    ended_at = std::chrono::steady_clock::now();
  }

  ServerOptions options_ = default_options(Model::pool);
  bool out_of_memory = false;
  int ended = 0;
  std::chrono::steady_clock::time_point ended_at;

 private:
  StripedMetrics metrics_;
};

}  // namespace echolab
