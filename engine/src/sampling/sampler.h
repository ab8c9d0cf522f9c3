// Picks the next token from one raw logits row [vocab]. temperature 0 is greedy (argmax, lowest index wins
// ties). Otherwise: logits / temperature -> top-k -> softmax -> top-p (smallest set of most likely tokens
// whose probability reaches top_p) -> one draw from the renormalised distribution with the sequence's own
// RNG, so a seed gives the same tokens whatever else is in the batch.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "engine/engine.h"

namespace engine {

class Sampler {
 public:
  /// Index of the largest value; the lowest index among equal maxima. NaN never wins.
  static int32_t argmax(std::span<const float> logits);

  /// The distribution a draw comes from: [vocab] probabilities summing to 1, zero where top-k/top-p masked
  /// the token. Only for temperature > 0.
  static std::vector<double> probabilities(std::span<const float> logits, const SamplingParams& params);

  /// One token: argmax when temperature <= 0, else a draw from probabilities() using `rng`.
  static int32_t sample(std::span<const float> logits, const SamplingParams& params, std::mt19937_64& rng);

  /// A uniform double in [0, 1) from 53 bits of `rng` (the same on every platform, unlike
  /// std::uniform_real_distribution).
  static double uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
};

}  // namespace engine
