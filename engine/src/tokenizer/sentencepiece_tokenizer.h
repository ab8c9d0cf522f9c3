// A SentencePiece vocabulary (tokenizer.model) through libsentencepiece.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace engine {

/// Throws ModelLoadError naming `path` when the file is missing or not a SentencePiece model.
std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& path);

}  // namespace engine
