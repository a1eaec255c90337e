#include "servers/prefork/spawner.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "common/metrics/scoreboard.hpp"
#include "common/posix/die_with_parent.hpp"
#include "common/server/log.hpp"
#include "servers/prefork/spare_server_policy.hpp"

namespace echolab::prefork {
namespace {

// The first message on the control socket. It crosses an exec of the same binary, so the
// bytes are the struct.
struct SpawnerSetup {
  ChildSetup child;
  int scoreboard_fd = -1;
  std::size_t slot_count = 0;
};
static_assert(std::is_trivially_copyable_v<SpawnerSetup>);

// A request is up to this many slot numbers; the reply one pid (or -errno) per slot. Small,
// so that a reply comes within a second even on a machine so busy that the spawner forks 50
// children a second (measured with 10,000 to start beside two compilers): a request of 1,024
// then took more than the reply timeout, and the master gave up on a spawner that was merely
// slow. The round trips cost nothing beside the forks.
constexpr std::size_t kMostPerRequest = 32;
static_assert(kMostPerRequest <= kMaxSpawnRate);
constexpr char kReady = 'R';
// How long the master waits for the spawner's reply: a spawner that neither answers nor
// exits (stopped, stuck) must not hold the master, and with it every shutdown, forever. Far
// above what a request takes on a loaded machine: giving up on a spawner that is merely slow
// would leave the children it forked meanwhile unknown to the master.
constexpr timeval kReplyTimeout{.tv_sec = 30, .tv_usec = 0};

bool send_all(int fd, const void* bytes, std::size_t size) {
  return send(fd, bytes, size, MSG_NOSIGNAL) == static_cast<ssize_t>(size);
}

// fork(), but the child's parent is the master (the spawner's own parent): the master reaps
// it, gets its SIGCHLD and is the parent its death signal follows. A raw clone skips glibc's
// fork handlers, which a single-threaded process does not need; glibc asks the kernel for the
// thread id wherever it matters (raise, abort).
pid_t fork_as_sibling() {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg): syscall() is the only way to clone
  return static_cast<pid_t>(
      syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

[[noreturn]] void become_child(const SpawnerSetup& setup, int control_fd, std::uint32_t slot) {
  close(control_fd);  // else the master would not see EOF once the spawner is gone
  prctl(PR_SET_NAME, "echolab-prefork");  // the name the master's children have
  try {
    ScoreboardSlot& own_slot = Scoreboard::map_one_slot(setup.scoreboard_fd, slot);
    close(setup.scoreboard_fd);
    run_child(setup.child, own_slot);
  } catch (const std::exception& error) {  // never unwind into the spawner's loop
    log_error("worker_failed", {{"error", error.what()}});
  }
  _exit(1);
}

// One request: a child per slot, and the reply.
bool serve_request(const SpawnerSetup& setup, int control_fd,
                   std::span<const std::uint32_t> slots) {
  std::array<std::int32_t, kMostPerRequest> pids{};
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] >= setup.slot_count) {
      pids[i] = -EINVAL;
      continue;
    }
    const pid_t pid = fork_as_sibling();
    if (pid == 0) {
      become_child(setup, control_fd, slots[i]);
    }
    pids[i] = pid > 0 ? pid : -errno;
  }
  return send_all(control_fd, pids.data(), slots.size() * sizeof(std::int32_t));
}

}  // namespace

Spawner::~Spawner() { stop(); }

bool Spawner::launch(const ChildSetup& setup, int scoreboard_fd, std::size_t slot_count) {
  std::array<int, 2> ends{};
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends.data()) != 0) {
    log_error("spawner_failed", {{"error", "socketpair"}, {"errno", errno}});
    return false;
  }
  UniqueFd master_end(ends[0]);
  UniqueFd spawner_end(ends[1]);
  const std::string control = std::to_string(spawner_end.get());
  const pid_t pid = fork();
  if (pid == 0) {
    // What the spawner needs survives the exec; everything else the master holds is
    // close-on-exec.
    for (const int fd : {spawner_end.get(), setup.listener_fd, scoreboard_fd}) {
      fcntl(fd, F_SETFD, 0);
    }
    // /proc/self/exe, not a path: the same binary even if the file was replaced meanwhile,
    // which the setup message's raw bytes rely on.
    execl("/proc/self/exe", "echolab-prefork", kSpawnerFlag, control.c_str(), nullptr);
    _exit(127);
  }
  spawner_end.reset();
  if (pid < 0) {
    log_error("spawner_failed", {{"error", "fork"}, {"errno", errno}});
    return false;
  }
  pid_ = pid;
  control_ = std::move(master_end);
  setsockopt(control_.get(), SOL_SOCKET, SO_RCVTIMEO, &kReplyTimeout, sizeof(kReplyTimeout));
  const SpawnerSetup message{setup, scoreboard_fd, slot_count};
  char ready = 0;
  if (!send_all(control_.get(), &message, sizeof(message)) ||
      recv(control_.get(), &ready, 1, 0) != 1 || ready != kReady) {
    log_error("spawner_failed", {{"error", "no ready reply"}, {"pid", pid_}});
    stop();  // it exits, if it ever started; the master reaps it
    return false;
  }
  return true;
}

std::vector<pid_t> Spawner::spawn(std::span<const std::uint32_t> slots) {
  std::vector<pid_t> pids;
  pids.reserve(slots.size());
  std::array<std::int32_t, kMostPerRequest> reply{};
  while (control_ && pids.size() < slots.size()) {
    const auto request =
        slots.subspan(pids.size(), std::min(slots.size() - pids.size(), kMostPerRequest));
    const std::size_t reply_bytes = request.size() * sizeof(std::int32_t);
    if (!send_all(control_.get(), request.data(), request.size_bytes()) ||
        recv(control_.get(), reply.data(), reply_bytes, 0) != static_cast<ssize_t>(reply_bytes)) {
      log_error("spawner_failed", {{"error", "no reply"}, {"pid", pid_}});
      stop();
      break;
    }
    pids.insert(pids.end(), reply.begin(), reply.begin() + static_cast<long>(request.size()));
  }
  return pids;
}

void Spawner::stop() { control_.reset(); }

void Spawner::exited() {
  stop();
  pid_ = -1;
}

int run_spawner(int control_fd) {
  // The master's signals stay blocked (exec keeps the mask): the children unblock them once
  // their handlers exist. The spawner itself stops when the master closes the socket or dies
  // (a master gone before the setup arrives closes the socket: recv() returns 0).
  prctl(PR_SET_NAME, "echolab-spawner");  // not "exe", the name of /proc/self/exe
  set_log_model("prefork");
  SpawnerSetup setup{};
  if (recv(control_fd, &setup, sizeof(setup), 0) != static_cast<ssize_t>(sizeof(setup)) ||
      !die_with_parent(SIGKILL, setup.child.master_pid)) {
    return 1;
  }
  setup.child.not_a_socket_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (setup.child.not_a_socket_fd < 0 || !send_all(control_fd, &kReady, 1)) {
    return 1;
  }
  std::array<std::uint32_t, kMostPerRequest> slots{};
  for (;;) {
    const ssize_t got = recv(control_fd, slots.data(), sizeof(slots), 0);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      return 0;  // the master closed the socket: shutting down
    }
    const std::size_t count = static_cast<std::size_t>(got) / sizeof(std::uint32_t);
    if (!serve_request(setup, control_fd, std::span(slots).first(count))) {
      return 0;
    }
  }
}

}  // namespace echolab::prefork
