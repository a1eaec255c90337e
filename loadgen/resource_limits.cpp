#include "loadgen/resource_limits.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <fstream>

namespace echolab::load {

std::size_t ResourceLimits::ephemeral_ports() const {
  return ephemeral_port_high >= ephemeral_port_low ? ephemeral_port_high - ephemeral_port_low + 1
                                                   : 0;
}

std::size_t descriptors_needed(std::size_t connections, std::size_t threads) {
  constexpr std::size_t kProcessDescriptors = 16;
  constexpr std::size_t kPerEventLoop = 3;
  return connections + kProcessDescriptors + kPerEventLoop * (threads + 1);
}

ResourceLimits current_limits(std::size_t wanted_open_files) {
  ResourceLimits limits;
  rlimit open_files{};
  if (getrlimit(RLIMIT_NOFILE, &open_files) == 0) {
    if (open_files.rlim_cur < wanted_open_files && open_files.rlim_cur < open_files.rlim_max) {
      rlimit raised = open_files;
      raised.rlim_cur = open_files.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
        open_files = raised;
      }
    }
    limits.open_files_soft = static_cast<std::size_t>(open_files.rlim_cur);
    limits.open_files_hard = static_cast<std::size_t>(open_files.rlim_max);
  }
  std::ifstream port_range("/proc/sys/net/ipv4/ip_local_port_range");
  if (!(port_range >> limits.ephemeral_port_low >> limits.ephemeral_port_high)) {
    // Not Linux, or /proc hidden: assume the IANA range rather than refuse to run.
    limits.ephemeral_port_low = 49152;
    limits.ephemeral_port_high = 65535;
  }
  return limits;
}

std::optional<std::string> limits_problem(const ResourceLimits& limits, std::size_t connections,
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
