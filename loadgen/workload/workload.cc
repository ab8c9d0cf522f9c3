#include "loadgen/workload/workload.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <unordered_map>

namespace loadgen {

std::vector<size_t> choose_samples(size_t dataset_size, int64_t n, uint64_t seed) {
  if (dataset_size == 0) throw std::invalid_argument("cannot draw requests from an empty dataset");
  std::vector<size_t> perm(dataset_size);
  std::iota(perm.begin(), perm.end(), size_t{0});
  // Fisher-Yates with our own index draw: std::shuffle's use of the engine is implementation-defined.
  std::mt19937_64 rng(seed);
  for (size_t i = dataset_size - 1; i > 0; --i) std::swap(perm[i], perm[rng() % (i + 1)]);
  std::vector<size_t> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < out.size(); ++i) out[i] = perm[i % dataset_size];
  return out;
}

Workload build_workload(const Dataset& ds, const WorkloadOptions& o, const TokenizeFn& tokenize) {
  if (o.num_requests <= 0) throw std::invalid_argument("the number of requests must be > 0 (-n, or -X × -T)");
  if (o.max_new_tokens <= 0) throw std::invalid_argument("--max-new-tokens must be > 0");
  Workload w;
  w.requested = o.num_requests;
  struct Measured { std::string prompt; std::vector<int32_t> tokens; int out_len; };
  std::unordered_map<size_t, Measured> cache;  // a record drawn twice is tokenized once
  for (size_t pick : choose_samples(ds.samples.size(), o.num_requests, o.sample_seed)) {
    const Sample& s = ds.samples[pick];
    auto it = cache.find(pick);
    if (it == cache.end()) {
      Measured m;
      m.prompt = render_prompt(o.prompt_template, s.instruction, s.input);
      m.tokens = tokenize(m.prompt, true);
      if (o.output_len > 0) {
        m.out_len = o.output_len;
      } else {
        // Same work for every engine: the reference answer's length, clamped; at least one token.
        int ref = static_cast<int>(tokenize(s.output, false).size());
        m.out_len = std::clamp(ref, 1, o.max_new_tokens);
      }
      it = cache.emplace(pick, std::move(m)).first;
    }
    const Measured& m = it->second;
    const int plen = static_cast<int>(m.tokens.size());
    if (o.max_model_len > 0 && plen + m.out_len > o.max_model_len) {
      w.too_long.push_back({s.id, plen, m.out_len});
      continue;
    }
    WorkItem item;
    item.index = w.items.size();
    item.sample_id = s.id;
    item.prompt = m.prompt;
    if (o.send_prompt_tokens) item.prompt_tokens = m.tokens;
    item.max_new_tokens = m.out_len;
    item.ignore_eos = o.ignore_eos;
    item.temperature = o.temperature;
    item.seed = o.sampling_seed + static_cast<uint64_t>(s.id);
    w.items.push_back(std::move(item));
    w.prompt_lens.push_back(plen);
  }
  reorder_workload(&w, o.reorder);
  return w;
}

void reorder_workload(Workload* w, Reorder order) {
  if (order == Reorder::kNone) return;
  std::vector<size_t> idx(w->items.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  auto len = [&](size_t i) { return w->prompt_lens[i] + w->items[i].max_new_tokens; };
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return order == Reorder::kLengthAsc ? len(a) < len(b) : len(a) > len(b);
  });
  std::vector<WorkItem> items;
  std::vector<int> lens;
  items.reserve(idx.size());
  lens.reserve(idx.size());
  for (size_t i : idx) {
    items.push_back(std::move(w->items[i]));
    items.back().index = items.size() - 1;
    lens.push_back(w->prompt_lens[i]);
  }
  w->items = std::move(items);
  w->prompt_lens = std::move(lens);
}

}  // namespace loadgen
