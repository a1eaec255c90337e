#include "loadgen/shard.hpp"

#include <charconv>
#include <stdexcept>

namespace echolab::load {
namespace {

std::size_t parse_count(std::string_view digits, std::string_view whole) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) {
    throw std::invalid_argument("'" + std::string(whole) + "' is not I/N (e.g. 2/3)");
  }
  return value;
}

}  // namespace

std::size_t Shard::connections_of(std::size_t total) const {
  // Indices index-1, index-1+count, ... below total.
  return total >= index ? (total - index) / count + 1 : 0;
}

std::size_t Shard::global_index(std::size_t nth) const { return index - 1 + nth * count; }

std::string Shard::to_string() const { return std::to_string(index) + "/" + std::to_string(count); }

Shard parse_shard(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    throw std::invalid_argument("'" + std::string(text) + "' is not I/N (e.g. 2/3)");
  }
  const Shard shard{.index = parse_count(text.substr(0, slash), text),
                    .count = parse_count(text.substr(slash + 1), text)};
  if (shard.count == 0) {
    throw std::invalid_argument("'" + std::string(text) + "': N must be at least 1");
  }
  if (shard.index == 0 || shard.index > shard.count) {
    throw std::invalid_argument("'" + std::string(text) + "': I must be 1 to N");
  }
  return shard;
}

}  // namespace echolab::load
