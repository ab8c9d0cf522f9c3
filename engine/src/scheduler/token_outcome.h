// What one generated token does to its sequence: the text it releases and whether it ends the sequence.
// This is the one place where a token decides a finish (length, eos, stop token id, stop string); aborts
// and errors come from outside, through Scheduler::finish.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "scheduler/sequence.h"

namespace engine {

struct TokenOutcome {
  std::string text;                   ///< text delta to deliver with the token (stop strings held back or cut)
  std::optional<FinishReason> finish; ///< set when this token ends the sequence
};

/// Appends `token` to `seq`'s outputs, runs its text side (StreamDecoder, then StopMatcher; no text at all
/// when seq.decoder is null) and decides, in this order of precedence:
///   1. eos (unless ignore_eos) -> kEos, 2. a stop token id -> kStop: the token itself ends the sequence and
///      adds no text of its own;
///   3. a stop string completed by this token's text -> kStop, even when this was also the last allowed
///      token: the text was cut at the match, so the sequence ended because of it;
///   4. max_new_tokens reached -> kLength.
/// A sequence that ends for reason 1, 2 or 4 releases the text held back so far (an incomplete UTF-8
/// character, a possible stop-string prefix); if that completes a stop string under 4, the reason is kStop.
TokenOutcome append_token(Sequence& seq, int32_t token, int eos_id);

}  // namespace engine
