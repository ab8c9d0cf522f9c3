#include "scheduler/stop_matcher.h"

#include <algorithm>

namespace engine {

StopMatcher::StopMatcher(const std::vector<std::string>& stops) {
  for (const auto& s : stops)
    if (!s.empty()) stops_.push_back(s);
}

std::string StopMatcher::push(std::string_view delta) {
  if (matched_) return "";
  if (stops_.empty()) return std::string(delta);
  held_.append(delta);
  // Earliest match wins. A match cannot start in already-emitted text: that text was released only once
  // no stop string could start there.
  size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    matched_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_) {
    size_t max_len = std::min(held_.size(), s.size() - 1);
    for (size_t len = max_len; len > keep; --len)
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace engine
