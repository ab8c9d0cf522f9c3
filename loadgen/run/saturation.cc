#include "loadgen/run/saturation.h"

#include <cmath>
#include <cstdio>

namespace loadgen {

bool slope_with_error(const std::deque<std::pair<double, double>>& xy, double* slope, double* se) {
  const size_t n = xy.size();
  if (n < 3) return false;
  double mx = 0, my = 0;
  for (const auto& [x, y] : xy) mx += x, my += y;
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxx = 0, sxy = 0;
  for (const auto& [x, y] : xy) sxx += (x - mx) * (x - mx), sxy += (x - mx) * (y - my);
  if (!(sxx > 0)) return false;
  *slope = sxy / sxx;
  double rss = 0;
  for (const auto& [x, y] : xy) {
    const double r = y - (my + *slope * (x - mx));
    rss += r * r;
  }
  *se = std::sqrt(rss / static_cast<double>(n - 2) / sxx);
  return true;
}

void SaturationDetector::add(double t, double backlog, double ttft_s) {
  samples_.push_back({t, backlog, ttft_s});
  while (!samples_.empty() && samples_.front().t < t - o_.window_s) samples_.pop_front();
  if (saturated_ || t < o_.min_time_s) return;
  std::deque<std::pair<double, double>> b, f;
  double recent_ttft = NAN;
  for (const Sample& s : samples_) {
    b.emplace_back(s.t, s.backlog);
    if (!std::isnan(s.ttft)) f.emplace_back(s.t, s.ttft), recent_ttft = s.ttft;
  }
  if (!(recent_ttft > o_.min_ttft_s)) return;
  double sb, eb, sf, ef;
  if (!slope_with_error(b, &sb, &eb) || !slope_with_error(f, &sf, &ef)) return;
  // Growth that matters: over the window, each series rises by at least a quarter of its mean level (with many
  // looks at a long steady run, a slope merely above its noise would come up sooner or later).
  double mb = 0, mf = 0;
  for (const auto& p : b) mb += p.second / static_cast<double>(b.size());
  for (const auto& p : f) mf += p.second / static_cast<double>(f.size());
  const double span = samples_.back().t - samples_.front().t;
  const bool material = sb * span >= 0.25 * mb && sf * span >= 0.25 * mf;
  if (material && sb - o_.z * eb > 0 && sf - o_.z * ef > 0) {
    saturated_ = true;
    char buf[200];
    std::snprintf(buf, sizeof buf, "backlog +%.2f requests/s, TTFT +%.3f s/s over the last %.0f s (TTFT now %.1f s)", sb,
                  sf, std::min(o_.window_s, t), recent_ttft);
    why_ = buf;
  }
}

}  // namespace loadgen
