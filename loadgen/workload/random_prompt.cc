#include "loadgen/workload/random_prompt.h"

#include <stdexcept>

#include "engine/tokenizer.h"

namespace loadgen {
namespace {

bool ascii_letters(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  return true;
}

// Fewer word pieces than this (a byte or tiny vocabulary): letters and the space instead.
constexpr size_t kMinWordPieces = 32;

}  // namespace

RandomPromptGenerator::RandomPromptGenerator(const engine::Tokenizer& tok) : tok_(tok) {
  const int32_t special[] = {tok.bos_id(), tok.eos_id()};
  auto is_special = [&](int32_t id) { return id == special[0] || id == special[1]; };
  // Word pieces: " word" that encode back, from "word" alone, to exactly this piece.
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (is_special(id)) continue;
    const std::string b = tok.token_bytes(id);
    if (b.size() < 2 || b[0] != ' ' || !ascii_letters(std::string_view(b).substr(1))) continue;
    const std::vector<int32_t> back = tok.encode(b.substr(1), false);
    if (back.size() == 1 && back[0] == id) pieces_.push_back(id);
  }
  words_ = pieces_.size() >= kMinWordPieces;
  if (!words_) {
    pieces_.clear();
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
      if (is_special(id)) continue;
      const std::string b = tok.token_bytes(id);
      if (b.size() != 1 || !(b == " " || ascii_letters(b))) continue;
      const std::vector<int32_t> back = tok.encode(b, false);
      if (back.size() == 1 && back[0] == id) pieces_.push_back(id);
    }
  }
  if (pieces_.size() < 2)
    throw std::invalid_argument("tokenizer " + tok.describe() +
                                ": too few ordinary pieces (ASCII words or letters) to draw random prompts from");
}

std::vector<int32_t> RandomPromptGenerator::draw(int n, std::mt19937_64& rng) const {
  std::vector<int32_t> out(static_cast<size_t>(std::max(n, 0)));
  for (auto& id : out) id = static_cast<int32_t>(rng() % pieces_.size());  // an index for now
  for (auto& id : out) id = pieces_[static_cast<size_t>(id)];
  return out;
}

std::string RandomPromptGenerator::render(std::span<const int32_t> pieces, bool continues) const {
  std::string s;
  s.reserve(pieces.size() * 6);
  for (int32_t id : pieces) s += tok_.token_bytes(id);
  // SentencePiece adds the first word's space itself (its dummy prefix): a leading space would be one more.
  if (words_ && !continues && !s.empty() && s[0] == ' ') s.erase(0, 1);
  return s;
}

std::string RandomPromptGenerator::prompt(int n, std::mt19937_64& rng) const {
  if (n < 1) throw std::invalid_argument("a random prompt needs at least 1 token, got " + std::to_string(n));
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::vector<int32_t> ids = draw(n, rng);
    std::string text = render(ids);
    if (tok_.encode(text, false) == ids) return text;
  }
  throw std::runtime_error("tokenizer " + tok_.describe() + ": random prompts of " + std::to_string(n) +
                           " tokens do not tokenize back to themselves");
}

}  // namespace loadgen
