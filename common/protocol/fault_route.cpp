#include "common/protocol/fault_route.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace echolab {
namespace {

struct SplitTarget {
  std::string_view path;
  std::string_view query;
};

SplitTarget split_target(std::string_view target) {
  const auto question = target.find('?');
  return {target.substr(0, question),
          question == std::string_view::npos ? std::string_view{} : target.substr(question + 1)};
}

// Reads the text of `key` from a query string "a=1&b=2".
std::optional<std::string_view> query_text(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > key.size() && pair.starts_with(key) && pair[key.size()] == '=') {
      return pair.substr(key.size() + 1);
    }
    if (amp == std::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// Reads the decimal value of `key` from a query string "a=1&b=2".
std::optional<long> query_value(std::string_view query, std::string_view key) {
  const std::optional<std::string_view> digits = query_text(query, key);
  if (!digits) {
    return std::nullopt;
  }
  long value = 0;
  const auto [end, error] = std::from_chars(digits->data(), digits->data() + digits->size(), value);
  if (error != std::errc{} || end != digits->data() + digits->size()) {
    return std::nullopt;
  }
  return value;
}

bool is_token_prefix(std::string_view text) {
  return text.size() >= kMinTokenPrefix && text.size() <= kMaxTokenPrefix &&
         std::ranges::all_of(
             text, [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

ParsedFault timed_fault(FaultAction::Kind kind, std::optional<long> value, long max,
                        long to_microseconds) {
  if (!value || *value < 0 || *value > max) {
    return {FaultRoute::invalid, {}};
  }
  return {FaultRoute::valid, {kind, std::chrono::microseconds(*value * to_microseconds)}};
}

}  // namespace

ParsedFault parse_fault_route(std::string_view target) {
  const auto [path, query] = split_target(target);
  if (path == "/crash") {
    return {FaultRoute::valid, {FaultAction::Kind::crash, {}}};
  }
  if (path == "/sleep") {
    return timed_fault(FaultAction::Kind::sleep, query_value(query, "ms"), kMaxSleep.count(), 1000);
  }
  if (path == "/burn") {
    return timed_fault(FaultAction::Kind::burn, query_value(query, "us"), kMaxBurn.count(), 1);
  }
  return {};
}

ParsedMemoryRoute parse_memory_route(std::string_view target) {
  const auto [path, query] = split_target(target);
  if (path == "/corrupt") {
    return {MemoryRoute::corrupt, {}};
  }
  if (path != "/leak") {
    return {};
  }
  const std::optional<std::string_view> prefix = query_text(query, "prefix");
  if (!prefix || !is_token_prefix(*prefix)) {
    return {MemoryRoute::invalid, {}};
  }
  return {MemoryRoute::leak, *prefix};
}

}  // namespace echolab
