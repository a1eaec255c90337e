#include "common/protocol/fault_route.hpp"

#include <charconv>
#include <optional>

namespace echolab {
namespace {

// Reads the decimal value of `key` from a query string "a=1&b=2".
std::optional<long> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > key.size() && pair.starts_with(key) && pair[key.size()] == '=') {
      const std::string_view digits = pair.substr(key.size() + 1);
      long value = 0;
      const auto [end, error] =
          std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (error != std::errc{} || end != digits.data() + digits.size()) {
        return std::nullopt;
      }
      return value;
    }
    if (amp == std::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
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
  const auto question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
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

}  // namespace echolab
