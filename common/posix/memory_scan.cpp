#include "common/posix/memory_scan.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/posix/unique_fd.hpp"

namespace echolab {
namespace {

constexpr std::size_t kPieceBytes = std::size_t{1} << 20;

bool is_token_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::uintptr_t parse_hex(std::string_view text) {
  std::uintptr_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return value;
}

std::string read_whole(const char* path) {
  std::ifstream file(path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

struct ScanProgress {
  std::set<std::string> found;
  std::size_t mappings_read = 0;
  std::size_t mappings_unreadable = 0;
  std::size_t mappings_too_large = 0;
  std::uint64_t bytes = 0;
  std::string_view stopped;  // why a limit cut the scan short, empty if none did
};

class OwnMemoryScan {
 public:
  OwnMemoryScan(std::string_view prefix, const MemoryScanLimits& limits)
      : prefix_(prefix),
        limits_(limits),
        deadline_(std::chrono::steady_clock::now() + limits.max_time),
        memory_(::open("/proc/self/mem", O_RDONLY | O_CLOEXEC)),
        piece_(kPieceBytes) {}

  ScanProgress run() {
    for (const Mapping& mapping : readable_mappings(read_whole("/proc/self/maps"))) {
      if (!progress_.stopped.empty()) {
        break;
      }
      if (mapping.end - mapping.start > limits_.max_mapping_bytes) {
        ++progress_.mappings_too_large;
      } else if (read_mapping(mapping)) {
        ++progress_.mappings_read;
      } else {
        ++progress_.mappings_unreadable;
      }
    }
    return std::move(progress_);
  }

 private:
  // Reads one mapping in pieces that overlap by the longest token, so that a token across a
  // piece boundary is read whole from the next one. False if a read failed ([vvar] and the
  // like), true otherwise.
  bool read_mapping(const Mapping& mapping) {
    const std::size_t overlap = prefix_.size() + kMaxTokenTail;
    constexpr auto kLastOffset = static_cast<std::uintptr_t>(std::numeric_limits<off_t>::max());
    if (!memory_ || mapping.start > kLastOffset) {
      return false;
    }
    std::uintptr_t at = mapping.start;
    while (at < mapping.end && progress_.stopped.empty()) {
      const std::size_t wanted = std::min<std::uintptr_t>(piece_.size(), mapping.end - at);
      const ssize_t got = ::pread(memory_.get(), piece_.data(), wanted, static_cast<off_t>(at));
      if (got <= 0) {
        return false;
      }
      const auto length = static_cast<std::size_t>(got);
      const bool last = at + length >= mapping.end;
      const std::size_t keep = last || length <= overlap ? length : length - overlap;
      collect_tokens(std::string_view(piece_.data(), length), prefix_, keep, progress_.found,
                     limits_.max_tokens);
      progress_.bytes += keep;
      at += keep;
      check_limits();
    }
    return true;
  }

  void check_limits() {
    if (progress_.found.size() >= limits_.max_tokens) {
      progress_.stopped = "token limit";
    } else if (progress_.bytes >= limits_.max_bytes) {
      progress_.stopped = "byte limit";
    } else if (std::chrono::steady_clock::now() >= deadline_) {
      progress_.stopped = "time limit";
    }
  }

  std::string_view prefix_;
  MemoryScanLimits limits_;
  std::chrono::steady_clock::time_point deadline_;
  UniqueFd memory_;
  std::vector<char> piece_;
  ScanProgress progress_;
};

std::string describe(const ScanProgress& progress) {
  std::ostringstream body;
  body << "pid " << ::getpid() << "\nmappings " << progress.mappings_read << " read, "
       << progress.mappings_unreadable << " unreadable, " << progress.mappings_too_large
       << " too large\nbytes " << progress.bytes << "\ntokens " << progress.found.size() << '\n';
  for (const std::string& token : progress.found) {
    body << "token " << token << '\n';
  }
  if (!progress.stopped.empty()) {
    body << "stopped " << progress.stopped << '\n';
  }
  return body.str();
}

}  // namespace

std::vector<Mapping> readable_mappings(std::string_view maps) {
  std::vector<Mapping> mappings;
  while (!maps.empty()) {
    const auto newline = maps.find('\n');
    const std::string_view line = maps.substr(0, newline);
    maps.remove_prefix(newline == std::string_view::npos ? maps.size() : newline + 1);
    // "start-end perms offset dev inode path"
    const auto dash = line.find('-');
    const auto space = line.find(' ');
    if (dash == std::string_view::npos || space == std::string_view::npos || dash > space ||
        space + 1 >= line.size() || line[space + 1] != 'r') {
      continue;
    }
    mappings.push_back(
        {parse_hex(line.substr(0, dash)), parse_hex(line.substr(dash + 1, space - dash - 1))});
  }
  return mappings;
}

void collect_tokens(std::string_view bytes, std::string_view prefix, std::size_t starts_before,
                    std::set<std::string>& found, std::size_t max_tokens) {
  for (auto at = bytes.find(prefix);
       at != std::string_view::npos && at < starts_before && found.size() < max_tokens;
       at = bytes.find(prefix, at + 1)) {
    const std::string_view after = bytes.substr(at + prefix.size(), kMaxTokenTail);
    const auto tail = std::ranges::find_if_not(after, is_token_char) - after.begin();
    if (tail > 0) {
      found.emplace(bytes.substr(at, prefix.size() + static_cast<std::size_t>(tail)));
    }
  }
}

std::string scan_own_memory(std::string_view prefix, const MemoryScanLimits& limits) {
  return describe(OwnMemoryScan(prefix, limits).run());
}

std::string scan_own_memory(std::string_view prefix) { return scan_own_memory(prefix, {}); }

}  // namespace echolab
