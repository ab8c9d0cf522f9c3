// --stop-on-saturation (GuideLLM's over-saturation rule): a run whose backlog and TTFT keep growing will not
// recover, so it is ended early and recorded INVALID "saturated". Sampled once a second: the backlog (requests
// sent and not ended) and the mean TTFT of the first tokens that arrived since the previous sample. Saturated
// once min_time_s has passed, the recent TTFT is above min_ttft_s, and the least-squares slopes of both over
// the last window_s are positive by more than z standard errors, each rising over the window by at least a
// quarter of its mean level.
#pragma once

#include <cstddef>
#include <deque>
#include <string>

namespace loadgen {

struct SaturationOptions {
  double min_time_s = 30;
  double window_s = 120;
  double min_ttft_s = 2.5;
  double z = 2.58;  ///< one-sided margin of each slope (about 99.5 %)
};

class SaturationDetector {
 public:
  explicit SaturationDetector(SaturationOptions o = {}) : o_(o) {}
  /// `ttft_s`: NaN when no first token arrived since the previous sample.
  void add(double t, double backlog, double ttft_s);
  bool saturated() const { return saturated_; }
  /// The slopes when it fired, in words.
  const std::string& why() const { return why_; }

 private:
  struct Sample {
    double t, backlog, ttft;
  };
  SaturationOptions o_;
  std::deque<Sample> samples_;
  bool saturated_ = false;
  std::string why_;
};

/// Least-squares slope of y on x and its standard error; false with fewer than 3 points or no spread in x.
bool slope_with_error(const std::deque<std::pair<double, double>>& xy, double* slope, double* se);

}  // namespace loadgen
