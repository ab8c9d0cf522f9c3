// The byte tokenizer for models without a vocabulary file (stories260K's own tokenizer is not available;
// its vocabulary starts with the same layout): id 0 <unk>, 1 <s>, 2 </s>, 3 + b for byte b. Ids from 259 up
// (a model's merges) and the control ids decode to nothing.
#pragma once

#include <memory>

#include "tokenizer/tokenizer.h"

namespace engine {

inline constexpr int kByteTokenOffset = 3;
inline constexpr int kByteVocabSize = 256 + kByteTokenOffset;  // 259

/// `vocab_size` >= 259; larger values leave room for a model's extra (undecodable) ids.
std::unique_ptr<Tokenizer> make_byte_tokenizer(int vocab_size = kByteVocabSize);

}  // namespace engine
