#include "loadgen/run/interrupt.h"

#include <csignal>

namespace loadgen {

std::string signal_name(int sig) {
  if (sig == SIGINT) return "SIGINT";
  if (sig == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(sig);
}

}  // namespace loadgen
