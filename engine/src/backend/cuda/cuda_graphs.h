// Decode-only steps as CUDA graphs: one graph per padded batch size, captured the first time that size runs
// and replayed after. A replay needs only the one input copy before it, because every input sits in the
// backend's fixed device buffers; the graphs go whenever those buffers or the KV cache are reallocated.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <map>

#include "backend/backend.h"

namespace engine::cuda {

/// True when `b` is a step a graph can run: every slice one query token that wants logits, and at most
/// `max_seqs` of them (the backend's buffers are sized at load for graph_batch_size(max_seqs) rows, so a graph
/// step never reallocates them).
bool is_graph_step(const StepBatch& b, int max_seqs);

/// The batch size a graph step of T tokens is padded to: the next power of two up to 8, then the next
/// multiple of 16 (few sizes, so few captures).
int graph_batch_size(int T);

class GraphCache {
 public:
  GraphCache() = default;
  ~GraphCache() { clear(); }
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  /// Launches the graph of batch size `padded` on `s`; the first time, captures it from record(), which must
  /// only enqueue work on `s` (nothing that synchronizes or allocates).
  void launch(int padded, cudaStream_t s, const std::function<void()>& record);
  /// Destroys every graph: their kernels hold the pointers (activations, inputs, KV cache) and block size they
  /// were captured with.
  void clear();

 private:
  std::map<int, cudaGraphExec_t> graphs_;  ///< by padded batch size
};

}  // namespace engine::cuda
