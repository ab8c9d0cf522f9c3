// Staging one step's inputs into the pinned input buffer (step_inputs.h).
#include "backend/cuda/step_inputs.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "backend/cuda/kernels.h"

namespace engine::cuda {
namespace {

// The attention lists: slices with query_len > 1 in tiles of up to tile_q tokens, then the token of every
// one-token slice (the decode list, for the paged kernel).
void plan_attention_lists(const StepBatch& b, int tile_q, int32_t* lists, StagedInputs& st) {
  for (const SeqSlice& s : b.seqs)
    if (s.query_len > 1)
      for (int j0 = 0; j0 < s.query_len; j0 += tile_q)
        lists[st.n_tiles++] = prefill_tile(s.query_start + j0, std::min(tile_q, s.query_len - j0));
  for (const SeqSlice& s : b.seqs)
    if (s.query_len == 1) lists[st.n_tiles + st.n_dec++] = s.query_start;
}

}  // namespace

StagedInputs stage_step_inputs(const StepBatch& b, int pad_to, int prefill_tile_q, int block_size, int rope_len,
                               const InputLayout& layout, int32_t* host) {
  const int T = b.num_tokens();
  const int n_logits = b.num_logits();
  const InputLayout::Sections<int32_t> in = layout.at(host);
  const int nbt = static_cast<int>(b.block_tables.size());
  if (nbt > 0) std::memcpy(in.block_tables, b.block_tables.data(), nbt * sizeof(int32_t));
  in.block_tables[nbt] = 0;  // padding rows attend to block 0 (results discarded)
  if (T > 0) {  // a batch of padding rows alone (capture_decode_graphs) has no vectors to copy
    std::memcpy(in.tokens, b.tokens.data(), T * sizeof(int32_t));
    std::memcpy(in.positions, b.positions.data(), T * sizeof(int32_t));
  }
  StagedInputs st;
  st.one_token_rows =
      std::none_of(b.seqs.begin(), b.seqs.end(), [](const SeqSlice& s) { return s.query_len > 1; });
  // Lists only when some slice has more than one query token: else the step keeps the paged kernel over all
  // tokens, which is what graphs capture.
  if (prefill_tile_q > 0 && !st.one_token_rows) plan_attention_lists(b, prefill_tile_q, in.lists, st);
  int r = 0;
  for (const SeqSlice& s : b.seqs) {
    for (int j = 0; j < s.query_len; ++j) {
      const int t = s.query_start + j;
      const int p = b.positions[t];
      if (p < 0 || p >= rope_len || p / block_size >= s.num_blocks)
        throw std::out_of_range("cuda backend: token position " + std::to_string(p) +
                                " outside the sequence's blocks or the model's context");
      const int32_t blk = b.block_tables[s.block_table_start + p / block_size];
      in.slots[t] = blk * block_size + p % block_size;
      in.bt_start[t] = s.block_table_start;
    }
    if (s.want_logits) in.rows[r++] = s.query_start + s.query_len - 1;
  }
  const int padded = std::max(pad_to, T);
  for (int t = T; t < padded; ++t) {
    in.tokens[t] = 0;
    in.positions[t] = 0;
    in.slots[t] = -1;
    in.bt_start[t] = nbt;
  }
  st.T = padded;
  st.n_logits = pad_to > T ? padded : n_logits;
  for (int i = n_logits; i < st.n_logits; ++i) in.rows[i] = i;
  st.copy_ints = layout.ints(nbt + 1);  // the six sections and the used part of the block tables
  return st;
}

}  // namespace engine::cuda
