#include "loadgen/compare/compare.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "loadgen/run/metrics.h"
#include "results/sweep_json.h"

namespace loadgen {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct MetricName {
  std::string field, stat;
};

MetricName split(const std::string& m) {
  const size_t u = m.rfind('_');
  if (u == std::string::npos) return {};
  return {m.substr(0, u), m.substr(u + 1)};
}

double stat_of(std::vector<double>& v, const std::string& stat) {
  if (v.empty()) return kNaN;
  if (stat == "mean") {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  }
  const double p = stat == "median" ? 50 : stat == "p90" ? 90 : stat == "p95" ? 95 : 99;
  // numpy's linear interpolation from two order statistics, without a full sort.
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double x_lo = v[lo];
  const double frac = pos - static_cast<double>(lo);
  if (frac == 0 || lo + 1 >= v.size()) return x_lo;
  const double x_hi = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return x_lo + (x_hi - x_lo) * frac;
}

// The percentile interval of `draws` at `level`.
std::pair<double, double> interval(std::vector<double> draws, double level) {
  std::sort(draws.begin(), draws.end());
  const double alpha = 1 - level;
  return {percentile_sorted(draws, 100 * alpha / 2), percentile_sorted(draws, 100 * (1 - alpha / 2))};
}

/// Silverman's rule of thumb, 0.9 min(sd, IQR / 1.34) n^(-1/5), on the logs of the positive values (0 when
/// fewer than two): the kernel width of the smoothed bootstrap, as a factor on the log scale.
double log_bandwidth(const std::vector<double>& values) {
  std::vector<double> l;
  for (double v : values)
    if (v > 0 && std::isfinite(v)) l.push_back(std::log(v));
  if (l.size() < 2) return 0;
  double mean = 0;
  for (double x : l) mean += x;
  mean /= static_cast<double>(l.size());
  double ss = 0;
  for (double x : l) ss += (x - mean) * (x - mean);
  const double sd = std::sqrt(ss / static_cast<double>(l.size() - 1));
  std::sort(l.begin(), l.end());
  const double iqr = percentile_sorted(l, 75) - percentile_sorted(l, 25);
  const double scale = iqr > 0 ? std::min(sd, iqr / 1.34) : sd;
  return 0.9 * scale * std::pow(static_cast<double>(l.size()), -0.2);
}

std::string text(const nlohmann::json& v) {
  if (v.is_null()) return "none";
  if (v.is_string()) return v.get<std::string>().empty() ? "\"\"" : v.get<std::string>();
  return v.dump();
}

}  // namespace

void check_metric_name(const std::string& metric) {
  const MetricName m = split(metric);
  const bool field = m.field == "ttft" || m.field == "tpot" || m.field == "itl" || m.field == "e2el";
  const bool stat = m.stat == "mean" || m.stat == "median" || m.stat == "p90" || m.stat == "p95" || m.stat == "p99";
  if (!field || !stat)
    throw std::invalid_argument("--metric: '" + metric + "' is not <ttft|tpot|itl|e2el>_<mean|median|p90|p95|p99>");
}

std::vector<double> metric_values(const results::RunData& run, const std::string& field) {
  std::vector<double> v;
  for (const results::RequestRow& r : run.requests) {
    if (r.status != results::Status::kOk) continue;
    if (field == "itl") {
      for (double x : r.itl_ms)
        if (std::isfinite(x)) v.push_back(x);
      continue;
    }
    const std::optional<double>& x = field == "ttft" ? r.ttft_ms : field == "tpot" ? r.tpot_ms : r.e2el_ms;
    if (x && std::isfinite(*x)) v.push_back(*x);
  }
  return v;
}

results::Comparison compare_runs(const results::RunData& a, const results::RunData& b, const CompareOptions& o) {
  if (o.resamples < 1000) throw std::invalid_argument("--resamples: at least 1000");
  if (!(o.confidence > 0 && o.confidence < 1)) throw std::invalid_argument("--confidence: a fraction in (0, 1)");
  for (const std::string& m : o.metrics) check_metric_name(m);
  results::Comparison c;
  c.a_dir = a.dir.string();
  c.b_dir = b.dir.string();
  c.a_label = a.label;
  c.b_label = b.label;
  c.confidence = o.confidence;
  c.per_metric_confidence = 1 - (1 - o.confidence) / static_cast<double>(std::max<size_t>(1, o.metrics.size()));
  c.resamples = o.resamples;
  c.seed = o.seed;
  c.warnings = workload_differences(a, b);
  for (size_t mi = 0; mi < o.metrics.size(); ++mi) {
    const std::string& name = o.metrics[mi];
    const MetricName m = split(name);
    std::vector<double> va = metric_values(a, m.field), vb = metric_values(b, m.field);
    results::MetricComparison r;
    r.metric = name;
    r.n_a = static_cast<int64_t>(va.size());
    r.n_b = static_cast<int64_t>(vb.size());
    if (va.size() < 2 || vb.size() < 2) {
      r.verdict = "no data";
      c.metrics.push_back(r);
      continue;
    }
    {
      std::vector<double> ca = va, cb = vb;
      r.a = stat_of(ca, m.stat);
      r.b = stat_of(cb, m.stat);
      r.ratio = r.a > 0 ? r.b / r.a : kNaN;
    }
    // One seeded stream per metric, so adding a metric does not move another's interval.
    std::mt19937_64 rng(o.seed * 1000003u + mi);
    std::vector<double> da, db, dr, sa(va.size()), sb(vb.size());
    std::uniform_int_distribution<size_t> pick_a(0, va.size() - 1), pick_b(0, vb.size() - 1);
    // Quantiles: a smoothed bootstrap (each drawn value times exp(h N(0,1)), h from Silverman's rule on the log
    // values). The plain bootstrap of a median or p99 takes its values from a handful of order statistics, so
    // its spread is itself noisy (error ~ n^-1/4) and its intervals covered less than claimed on two runs of
    // one configuration; smoothing is the textbook fix (Hall, DiCiccio & Romano 1989). Means: plain.
    const bool smooth = m.stat != "mean";
    const double ha = smooth ? log_bandwidth(va) : 0, hb = smooth ? log_bandwidth(vb) : 0;
    std::normal_distribution<double> jitter(0.0, 1.0);
    for (int k = 0; k < o.resamples; ++k) {
      for (double& x : sa) x = va[pick_a(rng)] * (ha > 0 ? std::exp(ha * jitter(rng)) : 1.0);
      for (double& x : sb) x = vb[pick_b(rng)] * (hb > 0 ? std::exp(hb * jitter(rng)) : 1.0);
      const double xa = stat_of(sa, m.stat), xb = stat_of(sb, m.stat);
      da.push_back(xa);
      db.push_back(xb);
      dr.push_back(xa > 0 ? xb / xa : kNaN);
    }
    std::tie(r.a_lo, r.a_hi) = interval(da, c.per_metric_confidence);
    std::tie(r.b_lo, r.b_hi) = interval(db, c.per_metric_confidence);
    std::tie(r.ratio_lo, r.ratio_hi) = interval(dr, c.per_metric_confidence);
    // Latencies: a ratio above 1 is B slower.
    r.verdict = r.ratio_lo > 1 ? "slower" : r.ratio_hi < 1 ? "faster" : "no significant difference";
    c.metrics.push_back(r);
  }
  return c;
}

std::vector<std::string> workload_differences(const results::RunData& a, const results::RunData& b) {
  std::vector<std::string> w;
  const results::Summary &x = a.summary, &y = b.summary;
  if (x.num_prompts != y.num_prompts)
    w.push_back("N differs: " + std::to_string(x.num_prompts) + " vs " + std::to_string(y.num_prompts) + " requests");
  for (const char* key : {"dataset", "rate", "arrival", "burstiness", "trace", "num_requests", "duration_s", "seed",
                          "arrival_seed", "sample_seed", "sampling_seed", "output_len", "max_new_tokens",
                          "prompt_template", "reorder", "temperature", "ignore_eos", "max_concurrency", "warmup",
                          "reference"}) {
    const auto ia = x.settings.find(key), ib = y.settings.find(key);
    const nlohmann::json va = ia == x.settings.end() ? nlohmann::json() : *ia;
    const nlohmann::json vb = ib == y.settings.end() ? nlohmann::json() : *ib;
    if (va != vb) w.push_back(std::string(key) + " differs: " + text(va) + " vs " + text(vb));
  }
  if (x.model_id != y.model_id) w.push_back("model differs: " + x.model_id + " vs " + y.model_id);
  if (!a.has_chunks || !b.has_chunks) w.push_back("a run has no requests.jsonl: ITL is not compared from it");
  return w;
}

}  // namespace loadgen

namespace loadgen {

results::SweepComparison compare_sweeps(const std::filesystem::path& a, const std::filesystem::path& b,
                                        const CompareOptions& o) {
  const results::SweepData sa = results::load_sweep(a), sb = results::load_sweep(b);
  results::SweepComparison out;
  out.a_dir = a.string();
  out.b_dir = b.string();
  auto same = [](double x, double y) { return std::fabs(x - y) <= 1e-9 * std::max(1.0, std::fabs(x)); };
  for (const results::SweepCell& ca : sa.cells) {
    if (ca.status != results::Status::kOk || ca.dir.empty()) continue;
    const results::SweepCell* match = nullptr;
    for (const results::SweepCell& cb : sb.cells)
      if (cb.batch_size == ca.batch_size && same(cb.qps, ca.qps) && cb.status == results::Status::kOk && !cb.dir.empty())
        match = &cb;
    const std::string name = "batch " + results::batch_size_label(ca.batch_size) + ", " + results::qps_label(ca.qps) + " QPS";
    if (!match) {
      out.warnings.push_back(name + ": only in " + a.string());
      continue;
    }
    results::SweepComparisonCell cell;
    cell.batch_size = ca.batch_size;
    cell.qps = ca.qps;
    cell.comparison = compare_runs(results::load_run(a / ca.dir), results::load_run(b / match->dir), o);
    out.cells.push_back(std::move(cell));
  }
  for (const results::SweepCell& cb : sb.cells) {
    bool found = false;
    for (const results::SweepCell& ca : sa.cells) found = found || (ca.batch_size == cb.batch_size && same(ca.qps, cb.qps));
    if (!found)
      out.warnings.push_back("batch " + results::batch_size_label(cb.batch_size) + ", " + results::qps_label(cb.qps) +
                             " QPS: only in " + b.string());
  }
  return out;
}

}  // namespace loadgen
