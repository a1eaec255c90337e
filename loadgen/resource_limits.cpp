#include "loadgen/resource_limits.hpp"

namespace echolab::load {

std::size_t descriptors_needed(std::size_t connections, std::size_t threads) {
  constexpr std::size_t kProcessDescriptors = 16;
  constexpr std::size_t kPerEventLoop = 3;
  return connections + kProcessDescriptors + kPerEventLoop * (threads + 1);
}

SystemLimits current_limits(std::size_t wanted_open_files) {
  raise_open_files_limit(wanted_open_files);
  return read_system_limits();
}

std::optional<std::string> limits_problem(const SystemLimits& limits, std::size_t connections,
                                          std::size_t threads) {
  const std::size_t descriptors = descriptors_needed(connections, threads);
  if (limits.open_files_soft < descriptors) {
    const std::string wanted = std::to_string(descriptors);
    std::string advice = "raise it with `ulimit -n " + wanted + "`";
    if (limits.open_files_hard < descriptors) {
      advice += " after raising the hard limit (" + std::to_string(limits.open_files_hard) +
                ") as root, e.g. `prlimit --pid $$ --nofile=" + wanted + ":" + wanted +
                "` or nofile in /etc/security/limits.conf";
    }
    return std::to_string(connections) + " connections need " + wanted +
           " open files but `ulimit -n` is " + std::to_string(limits.open_files_soft) + "; " +
           advice;
  }
  if (limits.ephemeral_ports() < connections) {
    return std::to_string(connections) + " connections to one address need as many local ports " +
           "but net.ipv4.ip_local_port_range (" + std::to_string(limits.ephemeral_port_low) + "-" +
           std::to_string(limits.ephemeral_port_high) + ") has " +
           std::to_string(limits.ephemeral_ports()) +
           "; widen it as root with `sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"`";
  }
  return std::nullopt;
}

}  // namespace echolab::load
