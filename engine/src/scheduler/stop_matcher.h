// Stop-string matching on a stream of text deltas. Text that could be the start of a stop string is held
// back until it is either completed (a match: the stop string and what follows are never emitted) or ruled
// out (released with a later delta).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace engine {

class StopMatcher {
 public:
  StopMatcher() = default;
  /// Empty strings are ignored.
  explicit StopMatcher(const std::vector<std::string>& stops);

  /// Feeds one delta; returns the text that may be emitted now. Once matched() turns true, the returned
  /// text ends just before the match and every later push returns "".
  std::string push(std::string_view delta);
  /// The held-back text, for a sequence that ends for another reason ("" after a match).
  std::string flush();
  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;  ///< a suffix of the text so far that is a proper prefix of some stop string
  bool matched_ = false;
};

}  // namespace engine
