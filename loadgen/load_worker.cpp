#include "loadgen/load_worker.hpp"

#include <asio/post.hpp>

#include <algorithm>

#include "loadgen/attack_connection.hpp"
#include "loadgen/load_connection.hpp"

namespace echolab::load {

LoadWorker::LoadWorker(const RunPlan& plan, ConnectionGauge& gauge, std::size_t worker_index,
                       std::size_t worker_count)
    : keep_running_(io_.get_executor()),
      context_{.plan = plan, .io = io_, .gauge = gauge},
      ramp_timer_(io_),
      sweep_timer_(io_) {
  // Connections keep their index in the whole run (of which this process may be a shard), so
  // that their ramp times and open-loop phases are those of the whole run.
  const std::size_t total = plan.options.connections;
  const Shard& shard = plan.options.shard;
  const bool attack = plan.options.attack() != AttackMode::none;
  for (std::size_t nth = worker_index; nth < plan.options.shard_connections();
       nth += worker_count) {
    const std::size_t index = shard.global_index(nth);
    if (attack) {
      connections_.push_back(std::make_unique<AttackConnection>(context_));
    } else {
      connections_.push_back(std::make_unique<LoadConnection>(context_, index));
    }
    open_times_.push_back(plan.start + ramp_offset(index, total, plan.options.ramp));
  }
}

LoadWorker::~LoadWorker() = default;

void LoadWorker::run() {
  asio::post(io_, [this] {
    open_due_connections();
    sweep_timeouts();
  });
  io_.run();
}

void LoadWorker::stop(Clock::time_point run_end) {
  context_.stop_requested.store(true, std::memory_order_relaxed);
  asio::post(io_, [this, run_end] {
    ramp_timer_.cancel();
    sweep_timer_.cancel();
    for (auto& connection : connections_) {
      connection->close(run_end);
    }
    context_.stats.connections_not_started += connections_.size() - opened_;
    context_.series.finish(run_end);
    keep_running_.reset();
  });
}

void LoadWorker::open_due_connections() {
  const auto now = Clock::now();
  while (opened_ < connections_.size() && open_times_[opened_] <= now) {
    connections_[opened_]->open(now);
    ++opened_;
  }
  if (opened_ < connections_.size()) {
    ramp_timer_.expires_at(open_times_[opened_]);
    ramp_timer_.async_wait([this](const asio::error_code& error) {
      if (!error && !context_.stopping()) {
        open_due_connections();
      }
    });
  }
}

void LoadWorker::sweep_timeouts() {
  const auto now = Clock::now();
  for (std::size_t i = 0; i < opened_; ++i) {
    connections_[i]->check_timeout(now);
  }
  // A few sweeps per timeout bound how late a timeout is noticed; 250 ms at most keeps a
  // 10,000-connection sweep rare.
  const auto period = std::clamp<std::chrono::nanoseconds>(context_.plan.options.timeout / 8,
                                                           std::chrono::milliseconds(5),
                                                           std::chrono::milliseconds(250));
  sweep_timer_.expires_after(period);
  sweep_timer_.async_wait([this](const asio::error_code& error) {
    if (!error && !context_.stopping()) {
      sweep_timeouts();
    }
  });
}

}  // namespace echolab::load
