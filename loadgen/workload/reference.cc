#include "loadgen/workload/reference.h"

#include <stdexcept>

#include "accuracy/logits_file.h"

namespace loadgen {

ReferenceWorkload load_reference_workload(const std::string& path, int64_t n, uint64_t sample_seed, Reorder order) {
  accuracy::LogitsReader reader(path);
  ReferenceWorkload out;
  out.model = reader.info().model;
  out.vocab_size = reader.info().vocab_size;
  const std::vector<std::string> ids = reader.ids();
  if (ids.empty()) throw std::invalid_argument("--reference " + path + ": the file holds no requests");
  if (n > static_cast<int64_t>(ids.size()))
    throw std::invalid_argument("--reference " + path + ": -n " + std::to_string(n) + " exceeds its " +
                                std::to_string(ids.size()) + " requests");
  std::vector<size_t> picks;
  if (n <= 0) {
    for (size_t i = 0; i < ids.size(); ++i) picks.push_back(i);
  } else {
    picks = choose_samples(ids.size(), n, sample_seed);
  }
  Workload& w = out.workload;
  w.requested = static_cast<int64_t>(picks.size());
  for (size_t pick : picks) {
    accuracy::RequestLogits r = reader.read(ids[pick]);
    WorkItem item;
    item.index = w.items.size();
    // "<sample>" or "<sample>.t<turn>" / ".r<repeat>" (assign_logits_ids): the id is replayed as it is.
    try {
      size_t used = 0;
      item.sample_id = std::stoll(r.id, &used);
      if (used != r.id.size() && r.id[used] != '.') throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw std::invalid_argument("--reference " + path + ": request id '" + r.id + "' is not a sample index");
    }
    item.logits_id = r.id;
    if (r.tokens.empty()) throw std::invalid_argument("--reference " + path + ": request " + r.id + " has no steps");
    item.prompt = r.prompt_text;
    item.prompt_tokens = r.prompt_tokens;
    item.forced_tokens = r.tokens;
    item.max_new_tokens = r.n_steps();
    item.capture_logits_steps = r.n_steps();
    item.ignore_eos = true;  // BASE's steps are all replayed, eos or not
    w.prompt_lens.push_back(static_cast<int>(r.prompt_tokens.size()));
    w.items.push_back(std::move(item));
  }
  reorder_workload(&w, order);
  return out;
}

}  // namespace loadgen
