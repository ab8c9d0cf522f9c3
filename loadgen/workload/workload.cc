#include "loadgen/workload/workload.h"

#include <map>
#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <unordered_map>

#include "loadgen/workload/conversation.h"

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

namespace {

/// One record as the workload sees it: its first request, and with multi-turn the lengths of its later turns.
struct Measured {
  std::vector<ChatMessage> messages;  ///< the first request's messages (system, then the first user message)
  std::string prompt;
  std::vector<int32_t> tokens;        ///< of prompt, with bos
  int out_len = 0;
  std::vector<int> est_prompt;        ///< per turn: estimated tokens of its whole history (turn 0: exact)
  std::vector<int> turn_out;          ///< per turn: output tokens
  int usable = 0;                     ///< turns that fit max_model_len (0: the record is too long)
  int turns = 1;                      ///< turns the record has (1 unless multi-turn)
};

class Measurer {
 public:
  Measurer(const Dataset& ds, const WorkloadOptions& o, const TokenizeFn& tokenize) : ds_(ds), o_(o), tok_(tokenize) {}

  const Measured& get(size_t pick) {
    auto it = cache_.find(pick);
    if (it == cache_.end()) it = cache_.emplace(pick, measure(ds_.samples[pick])).first;
    return it->second;
  }

 private:
  int out_len(const std::string& reference, int fixed) const {
    if (o_.output_len > 0) return o_.output_len;
    if (fixed > 0) return fixed;
    // Same work for every engine: the reference answer's length, clamped; at least one token.
    return std::clamp(static_cast<int>(tok_(reference, false).size()), 1, o_.max_new_tokens);
  }
  bool fits(int prompt, int out) const { return o_.max_model_len <= 0 || prompt + out <= o_.max_model_len; }

  Measured measure(const Sample& s) const {
    Measured m;
    if (!s.is_conversation()) {
      m.messages = {{"user", render_prompt(PromptTemplate::kRaw, s.instruction, s.input)}};
      m.prompt = render_prompt(o_.prompt_template, s.instruction, s.input);
      m.out_len = out_len(s.output, 0);
    } else {
      if (!s.system.empty()) m.messages.push_back({"system", s.system});
      m.messages.push_back({"user", s.turns[0].user});
      m.prompt = conversation_prompt(m.messages);
      m.out_len = out_len(s.turns[0].reference, s.turns[0].output_len);
    }
    m.tokens = tok_(m.prompt, true);
    const int plen = static_cast<int>(m.tokens.size());
    m.est_prompt.push_back(plen);
    m.turn_out.push_back(m.out_len);
    m.usable = fits(plen, m.out_len) ? 1 : 0;
    if (!o_.multi_turn || !s.is_conversation()) return m;
    m.turns = static_cast<int>(s.turns.size());
    // A later turn's history: everything before it (prompts and answers) and its own message; the separators'
    // few tokens are not counted, so the estimate errs short by a token or two per turn.
    int history = plen + m.out_len;
    for (size_t k = 1; k < s.turns.size(); ++k) {
      const int prompt = history + static_cast<int>(tok_(s.turns[k].user, false).size());
      const int out = out_len(s.turns[k].reference, s.turns[k].output_len);
      m.est_prompt.push_back(prompt);
      m.turn_out.push_back(out);
      if (m.usable == static_cast<int>(k) && fits(prompt, out)) ++m.usable;
      history = prompt + out;
    }
    return m;
  }

  const Dataset& ds_;
  const WorkloadOptions& o_;
  const TokenizeFn& tok_;
  std::unordered_map<size_t, Measured> cache_;  // a record drawn twice is tokenized once
};

TooLong too_long_note(const Sample& s, const Measured& m) {
  const size_t k = static_cast<size_t>(m.usable);  // the first turn that does not fit
  return {s.id, m.est_prompt[k], m.turn_out[k], m.usable};
}

}  // namespace

Workload build_workload(const Dataset& ds, const WorkloadOptions& o, const TokenizeFn& tokenize) {
  if (o.num_requests <= 0) throw std::invalid_argument("the number of requests must be > 0 (-n, or -X × -T)");
  if (o.max_new_tokens <= 0) throw std::invalid_argument("--max-new-tokens must be > 0");
  if (ds.samples.empty()) throw std::invalid_argument("cannot draw requests from an empty dataset");
  Workload w;
  w.requested = o.num_requests;
  w.too_long_policy = o.too_long;
  Measurer measurer(ds, o, tokenize);
  const bool exclude = o.too_long == TooLongPolicy::kExclude && o.max_model_len > 0;
  std::vector<size_t> picks;
  if (exclude) {
    // The seeded order of the whole dataset, too-long records passed over: the draw of N from the records that
    // fit (cycled when N exceeds them), the same draw as without a limit when every record fits.
    for (size_t pick : choose_samples(ds.samples.size(), static_cast<int64_t>(ds.samples.size()), o.sample_seed)) {
      const Measured& m = measurer.get(pick);
      if (m.usable == 0) {
        w.too_long.push_back(too_long_note(ds.samples[pick], m));
        continue;
      }
      picks.push_back(pick);
      if (static_cast<int64_t>(picks.size()) == o.num_requests) break;
    }
    const size_t eligible = picks.size();
    for (size_t i = eligible; eligible > 0 && static_cast<int64_t>(picks.size()) < o.num_requests; ++i)
      picks.push_back(picks[i % eligible]);
  } else {
    picks = choose_samples(ds.samples.size(), o.num_requests, o.sample_seed);
  }
  for (size_t pick : picks) {
    const Sample& s = ds.samples[pick];
    const Measured& m = measurer.get(pick);
    if (m.usable == 0) {  // only under kSkip: drawn, then set aside
      w.too_long.push_back(too_long_note(s, m));
      continue;
    }
    const int64_t session = o.multi_turn ? static_cast<int64_t>(w.sessions.size()) : -1;
    if (o.multi_turn) w.sessions.emplace_back();
    const int turns = o.multi_turn ? m.usable : 1;
    if (o.multi_turn) w.turns_cut += m.turns - m.usable;
    for (int k = 0; k < turns; ++k) {
      WorkItem item;
      item.index = w.items.size();
      item.sample_id = s.id;
      item.session_id = session;
      item.turn = k;
      if (k == 0) {
        item.prompt = m.prompt;
        item.messages = m.messages;
        if (o.send_prompt_tokens && !o.multi_turn) item.prompt_tokens = m.tokens;
      } else {
        item.messages = {{"user", s.turns[static_cast<size_t>(k)].user}};  // the history is added at run time
      }
      item.max_new_tokens = m.turn_out[static_cast<size_t>(k)];
      item.ignore_eos = o.ignore_eos;
      item.temperature = o.temperature;
      item.seed = o.sampling_seed + static_cast<uint64_t>(s.id) + static_cast<uint64_t>(k);
      if (o.multi_turn) w.sessions.back().push_back(w.items.size());
      w.items.push_back(std::move(item));
      w.prompt_lens.push_back(m.est_prompt[static_cast<size_t>(k)]);
    }
  }
  assign_logits_ids(w.items);
  reorder_workload(&w, o.reorder);
  return w;
}

void assign_logits_ids(std::vector<WorkItem>& items) {
  std::map<std::pair<int64_t, int>, int> seen;  // (sample, turn) -> times already in the run
  for (WorkItem& item : items) {
    const int repeat = seen[{item.sample_id, item.turn}]++;
    item.logits_id = std::to_string(item.sample_id);
    if (item.turn > 0) item.logits_id += ".t" + std::to_string(item.turn);
    if (repeat > 0) item.logits_id += ".r" + std::to_string(repeat);
  }
}

void reorder_workload(Workload* w, Reorder order) {
  if (order == Reorder::kNone) return;
  if (!w->sessions.empty()) throw std::invalid_argument("--reorder: a multi-turn workload keeps its sessions' order");
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
