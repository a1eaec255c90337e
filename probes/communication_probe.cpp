#include "probes/communication_probe.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <thread>
#include <utility>

#include "common/posix/unique_fd.hpp"
#include "probes/child_process.hpp"
#include "probes/cpu_pin.hpp"
#include "probes/probe_error.hpp"
#include "probes/proc_files.hpp"
#include "probes/sampling.hpp"

namespace echolab::probe {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWarmUpRoundTrips = 50;
// A side that waits this long for a message takes its partner for dead: the probe fails
// instead of hanging.
constexpr std::chrono::seconds kPartnerTimeout{30};

constexpr const char* kThreadSharedMemory = "thread_shared_memory";
constexpr const char* kProcessSharedMemory = "process_shared_memory";
constexpr const char* kProcessPipe = "process_pipe";
constexpr const char* kProcessUnixSocket = "process_unix_socket";

enum class Side : std::size_t { probe = 0, partner = 1 };

std::size_t index_of(Side side) { return static_cast<std::size_t>(side); }
Side other(Side side) { return side == Side::probe ? Side::partner : Side::probe; }

// Two sides that send each other messages of a known size.
class Channel {
 public:
  Channel() = default;
  virtual ~Channel() = default;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  Channel(Channel&&) = delete;
  Channel& operator=(Channel&&) = delete;

  virtual bool send(Side from, std::span<const char> message) noexcept = 0;
  // False at end of file, on a hang-up, or when the other side stays silent too long.
  virtual bool receive(Side to, std::span<char> message) noexcept = 0;
  // A forked child drops the probe's ends and the probe the child's, so that either sees end
  // of file when the other dies.
  virtual void drop(Side side) noexcept = 0;
  // Ends the partner's loop: its next receive returns false.
  virtual void hang_up() noexcept = 0;
};

// A pipe each way, or one Unix stream socket pair: the kernel copies each message in and
// out.
class DescriptorChannel final : public Channel {
 public:
  static std::unique_ptr<Channel> pipes() {
    std::array<int, 2> requests{};
    std::array<int, 2> replies{};
    if (::pipe2(requests.data(), O_CLOEXEC) != 0) throw_system_error("pipe2");
    UniqueFd request_read(requests[0]);
    UniqueFd request_write(requests[1]);
    if (::pipe2(replies.data(), O_CLOEXEC) != 0) throw_system_error("pipe2");
    return std::make_unique<DescriptorChannel>(UniqueFd(replies[0]), std::move(request_write),
                                               std::move(request_read), UniqueFd(replies[1]));
  }

  static std::unique_ptr<Channel> unix_socket() {
    std::array<int, 2> ends{};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends.data()) != 0) {
      throw_system_error("socketpair");
    }
    UniqueFd probe_end(ends[0]);
    UniqueFd partner_end(ends[1]);
    // Each side reads and writes one socket; a duplicate lets every end have one owner.
    UniqueFd probe_copy(::fcntl(probe_end.get(), F_DUPFD_CLOEXEC, 0));
    UniqueFd partner_copy(::fcntl(partner_end.get(), F_DUPFD_CLOEXEC, 0));
    if (!probe_copy || !partner_copy) throw_system_error("fcntl F_DUPFD_CLOEXEC");
    return std::make_unique<DescriptorChannel>(std::move(probe_end), std::move(probe_copy),
                                               std::move(partner_end), std::move(partner_copy));
  }

  DescriptorChannel(UniqueFd probe_in, UniqueFd probe_out, UniqueFd partner_in,
                    UniqueFd partner_out) {
    in_[index_of(Side::probe)] = std::move(probe_in);
    out_[index_of(Side::probe)] = std::move(probe_out);
    in_[index_of(Side::partner)] = std::move(partner_in);
    out_[index_of(Side::partner)] = std::move(partner_out);
  }

  bool send(Side from, std::span<const char> message) noexcept override {
    const int fd = out_[index_of(from)].get();
    for (std::size_t done = 0; done < message.size();) {
      const ssize_t written = ::write(fd, message.data() + done, message.size() - done);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return false;
      done += static_cast<std::size_t>(written);
    }
    return true;
  }

  bool receive(Side to, std::span<char> message) noexcept override {
    const int fd = in_[index_of(to)].get();
    for (std::size_t done = 0; done < message.size();) {
      const ssize_t got = ::read(fd, message.data() + done, message.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      done += static_cast<std::size_t>(got);
    }
    return true;
  }

  void drop(Side side) noexcept override {
    in_[index_of(side)].reset();
    out_[index_of(side)].reset();
  }

  void hang_up() noexcept override { drop(Side::probe); }

 private:
  std::array<UniqueFd, 2> in_;
  std::array<UniqueFd, 2> out_;
};

long futex(std::uint32_t* word, int operation, std::uint32_t value,
           const timespec* timeout) noexcept {
  return ::syscall(SYS_futex, word, operation, value, timeout, nullptr, 0);
}

// A mapping both sides see (MAP_SHARED, so a forked child sees it too), one slot per
// direction. The sender writes the message into its slot, bumps the slot's sequence and
// wakes the receiver with a futex; the receiver sleeps on the futex until the sequence moves,
// then copies the message out. The futex is the shared kind (no FUTEX_PRIVATE_FLAG) for
// threads too, so both shared-memory pairs pay the same wake-up.
class SharedMemoryChannel final : public Channel {
 public:
  explicit SharedMemoryChannel(std::size_t max_bytes)
      : slot_bytes_(kHeaderBytes + max_bytes), mapping_bytes_(2 * slot_bytes_) {
    void* mapping =
        ::mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) throw_system_error("mmap of the shared channel");
    mapping_ = static_cast<char*>(mapping);
  }
  ~SharedMemoryChannel() override { ::munmap(mapping_, mapping_bytes_); }
  SharedMemoryChannel(const SharedMemoryChannel&) = delete;
  SharedMemoryChannel& operator=(const SharedMemoryChannel&) = delete;
  SharedMemoryChannel(SharedMemoryChannel&&) = delete;
  SharedMemoryChannel& operator=(SharedMemoryChannel&&) = delete;

  bool send(Side from, std::span<const char> message) noexcept override {
    std::memcpy(data_of(from), message.data(), message.size());
    std::atomic_ref(*sequence_of(from)).fetch_add(1, std::memory_order_release);
    (void)futex(sequence_of(from), FUTEX_WAKE, 1, nullptr);
    return true;
  }

  bool receive(Side to, std::span<char> message) noexcept override {
    const Side from = other(to);
    const std::uint32_t expected = received_[index_of(to)] + 1;
    if (!wait_for_sequence(from, expected)) return false;
    std::memcpy(message.data(), data_of(from), message.size());
    received_[index_of(to)] = expected;
    return true;
  }

  void drop(Side /*side*/) noexcept override {}

  void hang_up() noexcept override {
    std::atomic_ref(*closed_of(Side::probe)).store(1, std::memory_order_release);
    (void)futex(sequence_of(Side::probe), FUTEX_WAKE, 1, nullptr);
  }

 private:
  static constexpr std::size_t kHeaderBytes = 64;  // a cache line of its own

  bool wait_for_sequence(Side from, std::uint32_t expected) noexcept {
    const std::atomic_ref sequence(*sequence_of(from));
    const std::atomic_ref closed(*closed_of(from));
    const auto deadline = Clock::now() + kPartnerTimeout;
    const timespec poll_interval{0, 100'000'000};
    for (;;) {
      const std::uint32_t now = sequence.load(std::memory_order_acquire);
      if (now == expected) return true;
      if (closed.load(std::memory_order_acquire) != 0 || Clock::now() >= deadline) return false;
      // Sleeps only while the sequence still reads `now`, so a wake-up cannot be missed.
      (void)futex(sequence_of(from), FUTEX_WAIT, now, &poll_interval);
    }
  }

  char* slot_of(Side side) const { return mapping_ + index_of(side) * slot_bytes_; }
  std::uint32_t* sequence_of(Side side) const {
    return reinterpret_cast<std::uint32_t*>(slot_of(side));
  }
  std::uint32_t* closed_of(Side side) const { return sequence_of(side) + 1; }
  char* data_of(Side side) const { return slot_of(side) + kHeaderBytes; }

  std::size_t slot_bytes_;
  std::size_t mapping_bytes_;
  char* mapping_ = nullptr;
  // What each side has received so far; each side only touches its own.
  std::array<std::uint32_t, 2> received_{};
};

void pin_calling_thread(std::optional<int> cpu) noexcept {
  if (!cpu) return;
  cpu_set_t only{};
  CPU_ZERO(&only);
  CPU_SET(*cpu, &only);
  (void)::sched_setaffinity(0, sizeof only, &only);
}

void echo_until_hang_up(Channel& channel, std::vector<char>& buffer) noexcept {
  while (channel.receive(Side::partner, buffer)) {
    if (!channel.send(Side::partner, buffer)) return;
  }
}

enum class PartnerKind { thread, process };

// The side that echoes every message back, as a thread of the probe or as a forked child;
// hung up on, and joined or reaped, when it goes out of scope.
class Partner {
 public:
  Partner(PartnerKind kind, Channel& channel, std::size_t bytes, std::optional<int> cpu)
      : channel_(channel), buffer_(bytes) {
    if (kind == PartnerKind::process) {
      child_ = fork_child([this, cpu] {
        channel_.drop(Side::probe);
        pin_calling_thread(cpu);
        echo_until_hang_up(channel_, buffer_);
        return 0;
      });
      channel_.drop(Side::partner);
    } else {
      thread_ = std::thread([this, cpu] {
        pin_calling_thread(cpu);
        echo_until_hang_up(channel_, buffer_);
      });
    }
  }
  ~Partner() {
    channel_.hang_up();
    if (thread_.joinable()) thread_.join();
  }
  Partner(const Partner&) = delete;
  Partner& operator=(const Partner&) = delete;
  Partner(Partner&&) = delete;
  Partner& operator=(Partner&&) = delete;

 private:
  Channel& channel_;
  std::vector<char> buffer_;
  std::thread thread_;
  ChildProcess child_{-1};
};

struct Sample {
  double round_trip_us = 0;
  double mib_per_second = 0;
};

Sample round_trips(Channel& channel, std::vector<char>& message, int count) {
  const auto start = Clock::now();
  for (int trip = 0; trip < count; ++trip) {
    if (!channel.send(Side::probe, message) || !channel.receive(Side::probe, message)) {
      throw ProbeError("the communication partner stopped answering");
    }
  }
  const std::chrono::duration<double> elapsed = Clock::now() - start;
  const double bytes_moved = 2.0 * static_cast<double>(message.size()) * count;
  return {elapsed.count() * 1e6 / count, bytes_moved / elapsed.count() / (1024.0 * 1024.0)};
}

PairFigures summarize_pair(const char* pair, const std::vector<Sample>& samples) {
  return {pair, summarize_field(samples, &Sample::round_trip_us),
          summarize_field(samples, &Sample::mib_per_second)};
}

struct Where {
  std::optional<int> partner_cpu;  // the probe's own pin is already in place
};

PairFigures measure_through(const char* pair, std::unique_ptr<Channel> channel,
                            const CommunicationOptions& options, std::size_t bytes,
                            const Where& where) {
  const Partner partner(PartnerKind::process, *channel, bytes, where.partner_cpu);
  std::vector<char> message(bytes, 'm');
  const auto deadline = deadline_after(options.max_seconds_per_figure);
  (void)round_trips(*channel, message, kWarmUpRoundTrips);
  const auto samples = collect_until(options.samples, deadline, [&] {
    return round_trips(*channel, message, options.round_trips);
  });
  return summarize_pair(pair, samples);
}

struct SharedMemorySamples {
  Sample by_process;
  Sample by_thread;
};

// Process and thread samples alternate, so that a drift of the machine falls on both alike.
void measure_shared_memory(SizeFigures& figures, const CommunicationOptions& options,
                           std::size_t bytes, const Where& where) {
  SharedMemoryChannel process_channel(bytes);
  SharedMemoryChannel thread_channel(bytes);
  // Forked before the thread partner exists, so the child is a copy of one thread only.
  const Partner process(PartnerKind::process, process_channel, bytes, where.partner_cpu);
  const Partner thread(PartnerKind::thread, thread_channel, bytes, where.partner_cpu);
  std::vector<char> message(bytes, 'm');
  const auto deadline = deadline_after(options.max_seconds_per_figure);
  (void)round_trips(process_channel, message, kWarmUpRoundTrips);
  (void)round_trips(thread_channel, message, kWarmUpRoundTrips);
  const auto pairs = collect_until(options.samples, deadline, [&] {
    return SharedMemorySamples{round_trips(process_channel, message, options.round_trips),
                               round_trips(thread_channel, message, options.round_trips)};
  });
  std::vector<Sample> by_thread;
  std::vector<Sample> by_process;
  std::vector<double> difference_us;
  for (const auto& pair : pairs) {
    by_thread.push_back(pair.by_thread);
    by_process.push_back(pair.by_process);
    difference_us.push_back(pair.by_process.round_trip_us - pair.by_thread.round_trip_us);
  }
  figures.pairs.push_back(summarize_pair(kThreadSharedMemory, by_thread));
  figures.pairs.push_back(summarize_pair(kProcessSharedMemory, by_process));
  figures.process_minus_thread_shared_memory_us = summarize(difference_us);
}

SizeFigures measure_size(const CommunicationOptions& options, long long bytes, const Where& where) {
  SizeFigures figures;
  figures.bytes = bytes;
  const auto size = static_cast<std::size_t>(bytes);
  measure_shared_memory(figures, options, size, where);
  figures.pairs.push_back(
      measure_through(kProcessPipe, DescriptorChannel::pipes(), options, size, where));
  figures.pairs.push_back(
      measure_through(kProcessUnixSocket, DescriptorChannel::unix_socket(), options, size, where));
  return figures;
}

std::vector<int> allowed_cpus() {
  cpu_set_t allowed{};
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    throw_system_error("sched_getaffinity");
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
  return cpus;
}

PlacementFigures measure_placement(const CommunicationOptions& options, Placement placement,
                                   const std::vector<int>& cpus) {
  PlacementFigures figures;
  figures.placement = placement;
  figures.cpus = cpus;
  // The pin comes first: the partners inherit it, and a partner on a second CPU moves itself.
  std::optional<ScopedCpuPin> pin;
  if (!cpus.empty()) pin.emplace(cpus.front());
  const Where where{cpus.size() > 1 ? std::optional<int>(cpus[1]) : std::nullopt};
  for (const long long bytes : {options.small_bytes, options.large_bytes}) {
    figures.sizes.push_back(measure_size(options, bytes, where));
  }
  return figures;
}

const char* name_of(Placement placement) {
  switch (placement) {
    case Placement::one_cpu:
      return "one_cpu";
    case Placement::two_cpus:
      return "two_cpus";
    case Placement::unpinned:
      return "unpinned";
  }
  return "?";
}

Json to_json(const PairFigures& pair) {
  return {{"round_trip_us", to_json(pair.round_trip_us)},
          {"mib_per_second", to_json(pair.mib_per_second)}};
}

Json to_json(const SizeFigures& size) {
  Json pairs = Json::object();
  for (const PairFigures& pair : size.pairs) pairs[pair.pair] = to_json(pair);
  return {{"bytes", size.bytes},
          {"pairs", pairs},
          {"process_minus_thread_shared_memory_us",
           to_json(size.process_minus_thread_shared_memory_us)}};
}

std::string describe(const SizeFigures& size) {
  std::string text = std::to_string(size.bytes) + " B:";
  for (const PairFigures& pair : size.pairs) {
    text += " " + pair.pair + " " + fixed_decimals(pair.round_trip_us.median, 1) + " us";
  }
  return text;
}

}  // namespace

CommunicationResult run_communication_probe(const CommunicationOptions& options) {
  CommunicationResult result;
  result.options = options;
  const std::vector<int> cpus = allowed_cpus();
  result.placements.push_back(measure_placement(options, Placement::one_cpu, {cpus.front()}));
  if (cpus.size() >= 2) {
    result.placements.push_back(
        measure_placement(options, Placement::two_cpus, {cpus[0], cpus[1]}));
  } else {
    result.two_cpus_skipped = "the probe may run on one CPU only";
  }
  result.placements.push_back(measure_placement(options, Placement::unpinned, {}));
  return result;
}

Json to_json(const CommunicationResult& result) {
  Json placements = Json::object();
  for (const PlacementFigures& placement : result.placements) {
    Json sizes = Json::array();
    for (const SizeFigures& size : placement.sizes) sizes.push_back(to_json(size));
    placements[name_of(placement.placement)] = {{"cpus", placement.cpus}, {"sizes", sizes}};
  }
  return {
      {"probe", "communication"},
      {"kernel", kernel_release()},
      {"samples_requested", result.options.samples},
      {"round_trips_per_sample", result.options.round_trips},
      {"small_bytes", result.options.small_bytes},
      {"large_bytes", result.options.large_bytes},
      {"wake_up", "futex"},
      {"two_cpus_skipped",
       result.two_cpus_skipped ? Json(*result.two_cpus_skipped) : Json(nullptr)},
      {"placements", placements},
  };
}

std::string summary_line(const CommunicationResult& result) {
  std::string line = "communication (median round trip)";
  for (const PlacementFigures& placement : result.placements) {
    // Appended piece by piece: GCC 12 at -O2 warns (-Wrestrict, a false positive) on
    // "literal" + std::string&&.
    line.append("; ").append(name_of(placement.placement)).append(":");
    for (const SizeFigures& size : placement.sizes) {
      line.append(" ").append(describe(size));
    }
  }
  return line;
}

}  // namespace echolab::probe
