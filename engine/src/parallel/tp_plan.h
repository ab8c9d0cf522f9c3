// Tensor parallelism's plan: how a Llama model splits over N ranks, Megatron-style (Shoeybi et al. 2019, as
// vLLM does it). Per layer, wq/wk/wv and w_gate/w_up are column-parallel (each rank computes its own heads
// and its own slice of the SwiGLU columns, with no communication) and wo and w_down are row-parallel (each
// rank's product is a partial sum of the full output: an all-reduce adds them). The embedding and the LM head
// are split by vocabulary rows: each rank embeds the tokens of its rows (zeros elsewhere; the all-reduce adds
// them up) and computes its slice of the logits (an all-gather joins them). The KV cache follows the heads:
// a rank caches only its KV heads. A GQA model with fewer KV heads than ranks replicates each KV head over
// N / n_kv_heads ranks (vLLM's rule), so every rank holds one.
#pragma once

#include <string_view>

#include "model/model.h"

namespace engine::parallel {

struct TpPlan {
  int size = 1;         ///< N, the number of ranks
  int n_heads = 0;      ///< query heads per rank
  int n_kv_heads = 0;   ///< KV heads each rank holds: n_kv_heads / N, or 1 when replicated
  int kv_replicas = 1;  ///< ranks holding a copy of each KV head: N / model n_kv_heads when replicated, else 1
  int hidden = 0;       ///< SwiGLU columns (intermediate size) per rank
  int vocab = 0;        ///< vocabulary rows per rank (embedding and LM head)

  int first_head(int rank) const { return rank * n_heads; }
  /// The model KV head of the rank's first one; with replication ranks rank..rank+kv_replicas-1 share it.
  int first_kv_head(int rank) const { return kv_replicas > 1 ? rank / kv_replicas : rank * n_kv_heads; }
  int first_hidden(int rank) const { return rank * hidden; }
  int first_vocab(int rank) const { return rank * vocab; }
};

/// The plan of `c` over `size` ranks. Throws std::invalid_argument "<option> <size>: ..." naming the
/// dimension that does not split: attention heads, KV heads (N must divide them or be a multiple of them),
/// the intermediate size or the vocabulary.
TpPlan make_tp_plan(const ModelConfig& c, int size, std::string_view option);

}  // namespace engine::parallel
