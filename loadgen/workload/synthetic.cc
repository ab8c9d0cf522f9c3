#include "loadgen/workload/synthetic.h"

#include <cmath>
#include <random>
#include <stdexcept>

#include "engine/tokenizer.h"
#include "loadgen/workload/random_prompt.h"

namespace loadgen {
namespace {

void need(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

/// A length uniform in [floor(len·(1-r)), ceil(len·(1+r))], at least `lo`.
int draw_len(int len, double r, int lo, std::mt19937_64& rng) {
  const int a = std::max(lo, static_cast<int>(std::floor(len * (1.0 - r))));
  const int b = std::max(a, static_cast<int>(std::ceil(len * (1.0 + r))));
  return a + static_cast<int>(rng() % static_cast<uint64_t>(b - a + 1));
}

}  // namespace

void validate(const SyntheticOptions& o) {
  need(o.input_len > 0, "--input-len must be > 0, got " + std::to_string(o.input_len));
  need(o.output_len > 0, "--output-len must be > 0 for --dataset " + std::string(to_string(o.kind)) + ", got " +
                             std::to_string(o.output_len));
  need(o.range_ratio >= 0 && o.range_ratio < 1,
       "--range-ratio must be in [0, 1), got " + std::to_string(o.range_ratio));
  need(o.turns >= 1, "--turns must be >= 1, got " + std::to_string(o.turns));
  if (o.kind == SyntheticKind::kPrefix) {
    need(o.num_prefixes >= 1, "--num-prefixes must be >= 1, got " + std::to_string(o.num_prefixes));
    need(o.prefix_len > 0, "--prefix-len must be > 0 for --dataset prefix, got " + std::to_string(o.prefix_len));
    need(o.prefix_len < o.input_len, "--prefix-len (" + std::to_string(o.prefix_len) +
                                         ") must be less than --input-len (" + std::to_string(o.input_len) +
                                         "): each prompt is the prefix plus a suffix of its own");
  }
}

Dataset make_synthetic_dataset(const SyntheticOptions& o, int64_t records, uint64_t seed,
                               const engine::Tokenizer& tokenizer) {
  validate(o);
  need(records > 0, "a synthetic dataset needs at least one record");
  const RandomPromptGenerator gen(tokenizer);
  std::mt19937_64 rng(seed);
  Dataset ds;
  ds.path = to_string(o.kind);
  ds.format = to_string(o.kind);
  std::vector<std::vector<int32_t>> prefixes;
  if (o.kind == SyntheticKind::kPrefix)
    for (int g = 0; g < o.num_prefixes; ++g) prefixes.push_back(gen.draw(o.prefix_len, rng));
  ds.samples.reserve(static_cast<size_t>(records));
  for (int64_t i = 0; i < records; ++i) {
    Sample s;
    s.id = i;
    for (int t = 0; t < o.turns; ++t) {
      Turn turn;
      turn.output_len = draw_len(o.output_len, o.range_ratio, 1, rng);
      if (o.kind == SyntheticKind::kPrefix && t == 0) {
        const std::vector<int32_t>& prefix = prefixes[static_cast<size_t>(i % o.num_prefixes)];
        const int len = draw_len(o.input_len, o.range_ratio, o.prefix_len + 1, rng);
        // The suffix is drawn and checked as a continuation of the prefix: the whole prompt is exact.
        std::vector<int32_t> ids = prefix;
        const std::vector<int32_t> suffix = gen.draw(len - o.prefix_len, rng);
        ids.insert(ids.end(), suffix.begin(), suffix.end());
        turn.user = gen.render(ids);
        if (tokenizer.encode(turn.user, false) != ids)
          throw std::runtime_error("tokenizer " + tokenizer.describe() + ": a prefix prompt did not tokenize back");
      } else {
        turn.user = gen.prompt(draw_len(o.input_len, o.range_ratio, 1, rng), rng);
      }
      s.turns.push_back(std::move(turn));
    }
    ds.samples.push_back(std::move(s));
  }
  return ds;
}

}  // namespace loadgen
