// The CUDA backend's decode graph cache (cuda_graphs.h).
#include "backend/cuda/cuda_graphs.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"

namespace engine::cuda {

bool is_graph_step(const StepBatch& b, int max_seqs) {
  const int T = b.num_tokens();
  return T > 0 && T == static_cast<int>(b.seqs.size()) && T <= max_seqs &&
         std::all_of(b.seqs.begin(), b.seqs.end(), [](const SeqSlice& s) { return s.query_len == 1 && s.want_logits; });
}

int graph_batch_size(int T) {
  if (T <= 8) {
    int b = 1;
    while (b < T) b *= 2;
    return b;
  }
  return (T + 15) / 16 * 16;
}

void GraphCache::launch(int padded, cudaStream_t s, const std::function<void()>& record) {
  auto it = graphs_.find(padded);
  if (it == graphs_.end()) {
    cudaGraph_t g = nullptr;
    LLM_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    try {
      record();
    } catch (...) {
      cudaStreamEndCapture(s, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    LLM_CUDA_CHECK(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t exec = nullptr;
    LLM_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    cudaGraphDestroy(g);
    it = graphs_.emplace(padded, exec).first;
  }
  LLM_CUDA_CHECK(cudaGraphLaunch(it->second, s));
}

void GraphCache::clear() {
  for (auto& [b, g] : graphs_) cudaGraphExecDestroy(g);
  graphs_.clear();
}

}  // namespace engine::cuda
