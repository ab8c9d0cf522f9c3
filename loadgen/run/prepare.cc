// The run's workload (prepare.h).
#include "loadgen/run/prepare.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "loadgen/clients/scoring_probe.h"
#include "loadgen/workload/dataset.h"
#include "loadgen/workload/reference.h"
#include "loadgen/workload/synthetic.h"

namespace loadgen {

Prepared prepare_dataset(const RunConfig& c, const SystemUnderTest& sut, int64_t num_requests) {
  const WorkloadConfig& wc = c.workload;
  Prepared p;
  Dataset ds;
  if (wc.synthetic) {
    if (!sut.tokenizer) throw std::invalid_argument("--dataset " + std::string(to_string(wc.synthetic->kind)) + ": no tokenizer");
    ds = make_synthetic_dataset(*wc.synthetic, num_requests, wc.sample_seed, *sut.tokenizer);
  } else {
    ds = load_dataset(wc.dataset, wc.dataset_options);
  }
  WorkloadOptions w;
  w.num_requests = num_requests;
  w.sample_seed = wc.sample_seed;
  w.sampling_seed = wc.sampling_seed;
  w.prompt_template = wc.prompt_template;
  w.max_new_tokens = wc.max_new_tokens;
  w.output_len = wc.output_len;
  w.ignore_eos = wc.ignore_eos;
  w.max_model_len = sut.max_model_len;
  w.too_long = wc.too_long;
  w.multi_turn = wc.multi_turn;
  w.reorder = wc.reorder;
  w.send_prompt_tokens = sut.in_process;
  w.temperature = wc.temperature;
  p.workload = build_workload(ds, w, sut.tokenize);
  if (!c.logits.path.empty() || !c.logits.npy_dir.empty())
    for (auto& item : p.workload.items) item.capture_logits_steps = std::min(c.logits.steps, item.max_new_tokens);
  if (!c.logprobs.path.empty())
    for (auto& item : p.workload.items) item.top_logprobs = c.logprobs.top_k;
  nlohmann::json bad = nlohmann::json::array();
  for (size_t i = 0; i < ds.skipped.size() && i < 20; ++i)
    bad.push_back({{"where", ds.skipped[i].where}, {"reason", ds.skipped[i].reason}});
  nlohmann::json too_long = nlohmann::json::array();
  for (size_t i = 0; i < p.workload.too_long.size() && i < 20; ++i) {
    const auto& t = p.workload.too_long[i];
    too_long.push_back({{"sample_id", t.sample_id}, {"prompt_tokens", t.prompt_tokens}, {"output_tokens", t.output_tokens},
                        {"turn", t.turn}});
  }
  p.notes = {{"dataset", ds.path},
             {"format", ds.format},
             {"records", ds.samples.size()},
             {"bad_records_skipped", ds.skipped.size()},
             {"bad_records", bad},
             {"filtered_by_status", ds.filtered},
             {"requested", p.workload.requested},
             {"too_long_skipped", p.workload.too_long_policy == TooLongPolicy::kSkip ? p.workload.too_long.size() : 0},
             {"too_long_excluded", p.workload.too_long_policy == TooLongPolicy::kExclude ? p.workload.too_long.size() : 0},
             {"too_long_policy", to_string(p.workload.too_long_policy)},
             {"too_long", too_long},
             {"max_model_len", w.max_model_len},
             {"prompt_template", to_string(wc.prompt_template)},
             {"reorder", to_string(wc.reorder)}};
  if (!p.workload.too_long.empty())
    p.notes["too_long_reason"] = "prompt + output tokens > max_model_len " + std::to_string(w.max_model_len) +
                                 (p.workload.too_long_policy == TooLongPolicy::kExclude
                                      ? " (excluded before the draw: the next records were drawn instead)"
                                      : " (drawn, then skipped: fewer requests than asked)");
  if (wc.multi_turn) {
    p.notes["sessions"] = p.workload.sessions.size();
    p.notes["requests"] = p.workload.items.size();
    p.notes["turns_cut"] = p.workload.turns_cut;
  }
  return p;
}

Prepared prepare_reference(const RunConfig& c, const SystemUnderTest& sut, std::ostream* log) {
  const WorkloadConfig& wc = c.workload;
  ReferenceWorkload ref = load_reference_workload(wc.reference, c.load.num_requests, wc.sample_seed, wc.reorder);
  if (sut.in_process && sut.vocab_size > 0 && ref.vocab_size != sut.vocab_size)
    throw std::invalid_argument("--reference " + wc.reference + ": vocab size " + std::to_string(ref.vocab_size) +
                                " differs from the model's " + std::to_string(sut.vocab_size));
  Prepared p;
  p.workload = std::move(ref.workload);
  if (!sut.in_process) {
    // Over HTTP: the server scores BASE's prompt + tokens (prompt_logprobs, echo, decoder_input_details).
    for (WorkItem& item : p.workload.items) {
      item.score_steps = static_cast<int>(item.forced_tokens.size());
      item.prompt_tokens.insert(item.prompt_tokens.end(), item.forced_tokens.begin(), item.forced_tokens.end());
      item.forced_tokens.clear();
      item.capture_logits_steps = 0;
      item.max_new_tokens = 1;
      item.top_logprobs = c.logprobs.top_k;
    }
    const ScoringProbe probe = probe_prompt_scoring(c.sut.http, p.workload.items.front(), c.load.drain_timeout_s);
    p.notes["teacher_forcing"] = probe.scores_prompts ? "prompt scoring" : "none (the server scores no prompts)";
    if (!probe.scores_prompts) {
      if (log)
        *log << "--reference: " << c.sut.http.endpoint << " offers no prompt scoring (" << probe.why
             << "); falling back to forcing nothing: BASE's prompts are generated greedily for BASE's step counts, and "
                "acc_allclose compares each request up to the first step where the tokens diverge\n";
      for (WorkItem& item : p.workload.items) item = unforced(item);
    }
  }
  p.notes = {{"reference", wc.reference}, {"reference_model", ref.model}, {"reference_vocab_size", ref.vocab_size},
             {"requested", p.workload.requested},
             {"too_long_skipped", 0}, {"reorder", to_string(wc.reorder)}};
  return p;
}

}  // namespace loadgen
