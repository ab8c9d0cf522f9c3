// One rank's weights under a TpPlan (tp_plan.h), in the dtype they were loaded in, so any backend's load()
// takes a shard as it takes a whole model. Row slices (wq/wk/wv, w_gate/w_up, embedding, LM head) are views
// into the full model's storage; column slices (wo, w_down) are copied, 1/N of each.
#pragma once

#include "model/model.h"
#include "parallel/tp_plan.h"

namespace engine::parallel {

/// Rank `rank`'s part of `w`: its config has the rank's n_heads, n_kv_heads, hidden_dim and vocab_size (dim
/// and head_dim unchanged), its tensors are
///   wq [n_heads*hd, dim], wk, wv [n_kv_heads*hd, dim]   rows of its heads (its KV heads, replicated or not)
///   wo [dim, n_heads*hd]                                 columns of its heads
///   w_gate, w_up [hidden, dim], w_down [dim, hidden]     its slice of the intermediate columns
///   tok_embeddings, lm_head [vocab, dim]                 its vocabulary rows (still tied when the model is)
///   norms                                                whole (every rank normalises the full residual).
/// The shard keeps `w`'s storage alive. Throws std::invalid_argument for a rank outside [0, plan.size).
ModelWeights shard_weights(const ModelWeights& w, const TpPlan& plan, int rank);

}  // namespace engine::parallel
