#include "loadgen/run/token_id_map.h"

#include "accuracy/logits_file.h"
#include "engine/tokenizer.h"

namespace loadgen {
namespace {

// "bytes:\xe2\x96" -> the bytes it spells; anything else unchanged.
std::string unescape_bytes(const std::string& text) {
  static constexpr std::string_view kPrefix = "bytes:";
  if (text.compare(0, kPrefix.size(), kPrefix) != 0) return text;
  std::string out;
  for (size_t i = kPrefix.size(); i < text.size();) {
    if (i + 3 < text.size() && text[i] == '\\' && text[i + 1] == 'x') {
      out.push_back(static_cast<char>(std::stoi(text.substr(i + 2, 2), nullptr, 16)));
      i += 4;
    } else {
      return text;  // not the escaped form after all
    }
  }
  return out;
}

}  // namespace

TokenIdMap::TokenIdMap(const engine::Tokenizer& tokenizer) {
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    auto [it, inserted] = ids_.emplace(tokenizer.token_bytes(id), id);
    if (!inserted) it->second = accuracy::kUnmapped;
  }
}

int32_t TokenIdMap::id(const std::string& text) const {
  std::string bytes;
  try {
    bytes = unescape_bytes(text);
  } catch (const std::exception&) {
    return accuracy::kUnmapped;
  }
  auto it = ids_.find(bytes);
  return it == ids_.end() ? accuracy::kUnmapped : it->second;
}

}  // namespace loadgen
