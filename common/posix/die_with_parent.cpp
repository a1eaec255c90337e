#include "common/posix/die_with_parent.hpp"

#include <sys/prctl.h>
#include <unistd.h>

namespace echolab {

bool die_with_parent(int signal, pid_t parent) {
  return prctl(PR_SET_PDEATHSIG, signal) == 0 && getppid() == parent;
}

}  // namespace echolab
