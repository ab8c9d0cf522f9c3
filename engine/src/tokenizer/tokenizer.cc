// load_tokenizer() and StreamDecoder.
//
// Streaming keeps the space SentencePiece encodes at the start of a word ("▁the" → " the") for every token,
// the first generated one included: a completion continues its prompt, so " Paris" after "The capital is"
// needs its space (vLLM decodes with the prompt as prefix for the same reason; llama.cpp's token_to_piece
// keeps it too). Tokenizer::decode() of a whole sequence follows SentencePiece and drops that first space.
#include "tokenizer/tokenizer.h"

#include "tokenizer/byte_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/utf8.h"

namespace engine {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (path.empty() || path == "bytes") return make_byte_tokenizer();
  return make_sentencepiece_tokenizer(path);
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_.token_bytes(id);
  std::string out;
  const size_t used = append_valid_utf8(pending_, out, /*final=*/false);
  pending_.erase(0, used);  // keeps at most the 1-3 bytes of an unfinished character
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  append_valid_utf8(pending_, out, /*final=*/true);
  pending_.clear();
  return out;
}

}  // namespace engine
