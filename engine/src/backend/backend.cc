// StepBatch helpers, the default forward_argmax (host argmax over forward()'s logits), and make_backend().
#include "backend/backend.h"

#include <stdexcept>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#ifdef LLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace engine {

int StepBatch::num_logits() const {
  int n = 0;
  for (const SeqSlice& s : seqs) n += s.want_logits ? 1 : 0;
  return n;
}

namespace {
int32_t argmax_row(const float* row, int vocab) {
  // Lowest index wins ties; NaN never wins (comparisons with NaN are false), an all-NaN row gives 0.
  int32_t best = 0;
  float best_v = row[0];
  for (int j = 1; j < vocab; ++j)
    if (row[j] > best_v || (best_v != best_v && row[j] == row[j])) {
      best_v = row[j];
      best = j;
    }
  return best;
}
}  // namespace

void Backend::forward_argmax(const StepBatch& batch, int32_t* token_ids) {
  const int rows = batch.num_logits(), vocab = vocab_size();
  if (rows > 0 && vocab <= 0)
    throw std::logic_error("backend " + name() + " reports no vocab_size(): override forward_argmax or vocab_size");
  // One buffer per thread, grown to the largest step seen: steady-state steps allocate nothing.
  thread_local std::vector<float> logits;
  if (logits.size() < size_t(rows) * vocab) logits.resize(size_t(rows) * vocab);
  forward(batch, logits.data());
  for (int r = 0; r < rows; ++r) token_ids[r] = argmax_row(logits.data() + size_t(r) * vocab, vocab);
}

std::unique_ptr<Backend> make_backend(const EngineConfig& config) {
  switch (config.backend) {
    case BackendKind::kCpu: return cpu::make_cpu_backend(config);
    case BackendKind::kCuda:
#ifdef LLM_HAVE_CUDA
      return make_cuda_backend(config);
#else
      throw ModelLoadError("this build has no CUDA backend: configure with --preset cuda");
#endif
  }
  throw ModelLoadError("unknown backend kind " + std::to_string(static_cast<int>(config.backend)));
}

}  // namespace engine
