#include "results/compare_json.h"

#include "results/files.h"
#include "results/json_fields.h"

namespace results {

using json_fields::number;

nlohmann::json comparison_to_json(const Comparison& c) {
  nlohmann::json metrics = nlohmann::json::array();
  for (const MetricComparison& m : c.metrics)
    metrics.push_back({{"metric", m.metric},
                       {"verdict", m.verdict},
                       {"a", {{"n", m.n_a}, {"estimate_ms", number(m.a)}, {"ci_ms", {number(m.a_lo), number(m.a_hi)}}}},
                       {"b", {{"n", m.n_b}, {"estimate_ms", number(m.b)}, {"ci_ms", {number(m.b_lo), number(m.b_hi)}}}},
                       {"ratio_b_over_a", number(m.ratio)},
                       {"ratio_ci", {number(m.ratio_lo), number(m.ratio_hi)}}});
  return {{"a", {{"dir", c.a_dir}, {"label", c.a_label}}},
          {"b", {{"dir", c.b_dir}, {"label", c.b_label}}},
          {"confidence", c.confidence},
          {"per_metric_confidence", c.per_metric_confidence},
          {"resamples", c.resamples},
          {"seed", c.seed},
          {"method", "percentile bootstrap, Bonferroni over the metrics; a difference needs the ratio interval off 1 and the two intervals apart"},
          {"metrics", metrics},
          {"warnings", c.warnings}};
}

nlohmann::json sweep_comparison_to_json(const SweepComparison& c) {
  nlohmann::json cells = nlohmann::json::array();
  for (const SweepComparisonCell& cell : c.cells)
    cells.push_back({{"batch_size", cell.batch_size}, {"qps", number(cell.qps)}, {"comparison", comparison_to_json(cell.comparison)}});
  return {{"a", c.a_dir}, {"b", c.b_dir}, {"cells", cells}, {"warnings", c.warnings}};
}

void write_compare_json(const std::filesystem::path& path, const nlohmann::json& j) {
  write_file_atomically(path, j.dump(2) + "\n");
}

}  // namespace results
