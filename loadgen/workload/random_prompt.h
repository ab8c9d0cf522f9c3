// Random prompts of an exact token length, for `--dataset random` and `--dataset prefix` (vLLM's random and
// prefix-repetition datasets, made exact). Token ids are drawn, seeded, from the tokenizer's ordinary pieces:
//  - word pieces ("▁the", "▁house": a space and ASCII letters) when the vocabulary has enough of them
//    (SentencePiece); SentencePiece splits text at spaces before it merges, so a text of such words
//    tokenizes back to exactly those pieces;
//  - else single letters and the space (the byte tokenizer: a byte is a token).
// Only pieces that encode back to themselves alone are used, and each prompt is re-encoded and checked, so a
// prompt of N pieces is N tokens to the server that tokenizes it with the same tokenizer (plus its bos).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace engine { class Tokenizer; }

namespace loadgen {

class RandomPromptGenerator {
 public:
  /// Collects the ordinary pieces of `tokenizer` (which must outlive this). Throws std::invalid_argument
  /// when it has fewer than 2.
  explicit RandomPromptGenerator(const engine::Tokenizer& tokenizer);

  /// `n` piece ids drawn uniformly from the ordinary pieces.
  std::vector<int32_t> draw(int n, std::mt19937_64& rng) const;
  /// The text of `pieces`, which tokenizes (without bos) to exactly `pieces`. `continues` = true renders a
  /// continuation, to be appended to the text of earlier pieces (a word piece keeps its leading space).
  std::string render(std::span<const int32_t> pieces, bool continues = false) const;
  /// A text of exactly `n` tokens (n >= 1): drawn, rendered, re-encoded and checked (redrawn if the check
  /// fails; throws std::runtime_error after 8 failures).
  std::string prompt(int n, std::mt19937_64& rng) const;

  size_t num_pieces() const { return pieces_.size(); }
  bool word_pieces() const { return words_; }
  const engine::Tokenizer& tokenizer() const { return tok_; }

 private:
  const engine::Tokenizer& tok_;
  std::vector<int32_t> pieces_;
  bool words_ = false;
};

}  // namespace loadgen
