// The ceiling every server works against: how many requests per second one core can push
// through the Session alone, with no sockets. `make bench` runs it.
#include <benchmark/benchmark.h>

#include <string>

#include "common/protocol/session.hpp"

namespace {

// What `wrk http://host/` sends.
const std::string kWrkGet = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8082\r\n\r\n";

std::string post_echo(std::size_t body_bytes) {
  return "POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8082\r\nContent-Type: "
         "application/octet-stream\r\nContent-Length: " +
         std::to_string(body_bytes) + "\r\n\r\n" + std::string(body_bytes, 'x');
}

void run_requests(benchmark::State& state, const std::string& request, std::size_t per_read) {
  std::string batch;
  for (std::size_t i = 0; i < per_read; ++i) {
    batch += request;
  }
  echolab::Session session{echolab::ProtocolConfig{}};
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): Google Benchmark's loop idiom
  for (auto _ : state) {
    const auto result = session.feed(std::span<const char>(batch.data(), batch.size()));
    benchmark::DoNotOptimize(session.output().data());
    session.output_sent(session.output().size());
    benchmark::DoNotOptimize(result.requests);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per_read));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch.size()));
  state.counters["requests_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * per_read), benchmark::Counter::kIsRate);
}

void BM_WrkGet(benchmark::State& state) { run_requests(state, kWrkGet, 1); }
void BM_WrkGetPipelined16(benchmark::State& state) { run_requests(state, kWrkGet, 16); }
void BM_PostEcho64(benchmark::State& state) { run_requests(state, post_echo(64), 1); }

void BM_RawEcho64(benchmark::State& state) {
  echolab::ProtocolConfig config;
  config.mode = echolab::ProtocolMode::raw;
  echolab::Session session{config};
  const std::string payload(64, 'r');
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): Google Benchmark's loop idiom
  for (auto _ : state) {
    session.feed(std::span<const char>(payload.data(), payload.size()));
    session.output_sent(session.output().size());
  }
  state.counters["requests_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// A fresh Session per request: the cost a new connection adds in every model.
void BM_NewSessionPerGet(benchmark::State& state) {
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): Google Benchmark's loop idiom
  for (auto _ : state) {
    echolab::Session session{echolab::ProtocolConfig{}};
    session.feed(std::span<const char>(kWrkGet.data(), kWrkGet.size()));
    benchmark::DoNotOptimize(session.output().data());
  }
  state.counters["requests_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_WrkGet);
BENCHMARK(BM_WrkGetPipelined16);
BENCHMARK(BM_PostEcho64);
BENCHMARK(BM_RawEcho64);
BENCHMARK(BM_NewSessionPerGet);

BENCHMARK_MAIN();
