// The local-time stamp that names run and sweep directories and dates a summary: "20261202-153012".
#pragma once

#include <ctime>
#include <string>

namespace common {

inline std::string local_timestamp(std::time_t t = std::time(nullptr)) {
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

}  // namespace common
