// Names for the threads the tools start, as `top -H`, `ps -L`, gdb and perf show them (Linux: at most 15
// characters; longer names are cut there). Naming is best effort: a failure changes nothing else.
#pragma once

#include <pthread.h>

#include <cstring>

namespace common {

inline void name_this_thread(const char* name) {
  char buf[16];
  std::strncpy(buf, name, sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  pthread_setname_np(pthread_self(), buf);
}

}  // namespace common
