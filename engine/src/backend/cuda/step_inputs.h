// The inputs of one CUDA step: where each sits in the backend's one int32 input buffer (pinned on the host,
// copied to the device in one transfer before the pass), and the host-side staging that fills it, with the
// plan of which tokens go through the prefill kernel and which through the paged kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/backend.h"

namespace engine::cuda {

/// The layout of the input buffer of a backend with room for `cap` tokens: six sections of `cap` int32
/// each, then the block tables. Staging writes it through at(host buffer), the layer pass reads it through
/// at(device buffer): the offsets exist only here.
struct InputLayout {
  static constexpr int kSections = 6;
  int cap = 0;  ///< ints per section: the backend's token capacity

  /// The sections as pointers into one buffer; I = int32_t (staging) or const int32_t (the pass).
  template <typename I>
  struct Sections {
    I* tokens;        ///< [T] token ids
    I* positions;     ///< [T]
    I* slots;         ///< [T] KV cache slot, block * block_size + offset; -1 (padding rows): no KV write
    I* bt_start;      ///< [T] where the token's sequence's block table starts in block_tables
    I* rows;          ///< [n_logits] the token whose final-norm row feeds each logits row
    /// Attention lists: n_tiles packed prefill tiles, then n_dec decode token indices (at most T entries, as
    /// every tile holds at least one token).
    I* lists;
    I* block_tables;  ///< every sequence's block table, then one 0 entry: the padding rows' table
  };
  template <typename I>
  Sections<I> at(I* base) const {
    const size_t c = static_cast<size_t>(cap);
    return {base, base + c, base + 2 * c, base + 3 * c, base + 4 * c, base + 5 * c, base + kSections * c};
  }

  /// Ints from the buffer's start to the end of `bt_entries` block-table entries: the buffer's size for a
  /// block-table capacity, or the prefix that holds one step's inputs.
  size_t ints(int64_t bt_entries) const {
    return kSections * static_cast<size_t>(cap) + static_cast<size_t>(bt_entries);
  }
};

/// What staging wrote: the shapes the layer pass runs with.
struct StagedInputs {
  int T = 0;         ///< token rows: the step's tokens, then padding rows up to pad_to
  int n_logits = 0;  ///< logits rows: one per want_logits slice, or all T rows when padded (graphs)
  /// Prefill tiles (attention_prefill.cu) at the start of the lists section, then n_dec decode token indices
  /// for the paged kernel. n_tiles == 0 (steps without a slice of query_len > 1, so every graph; the
  /// prefill kernel switched off): the paged kernel runs over all T tokens and n_dec is 0.
  int n_tiles = 0;
  int n_dec = 0;
  /// No slice has more than one query token (a decode step: each token's K/V row is the only one its sequence
  /// writes, at its last position; AttentionArgs::kv_before_wait). n_tiles > 0 only when this is false.
  bool one_token_rows = false;
  size_t copy_ints = 0;  ///< the prefix of the buffer that holds this step's inputs (one host-to-device copy)
};

/// Writes the inputs of `b` into `host`, laid out by `layout` (room for max(pad_to, T) tokens and
/// b.block_tables.size() + 1 block-table entries). Rows T .. pad_to-1 are padding: token 0 at position 0, no
/// KV write, the padding block table, logits row i read from row i. `prefill_tile_q` > 0: slices with
/// query_len > 1 go through the prefill kernel in tiles of up to that many tokens (prefill_tile_queries); 0: none
/// do. block_size: the KV cache's; rope_len: positions the model has a RoPE table for. Throws std::out_of_range for a token position outside
/// its sequence's blocks or the model's context.
StagedInputs stage_step_inputs(const StepBatch& b, int pad_to, int prefill_tile_q, int block_size, int rope_len,
                               const InputLayout& layout, int32_t* host);

}  // namespace engine::cuda
