// The engine's tokenizers, for callers that must count or cut text the way the model does (loadgen measures
// prompt and output lengths with them): SentencePiece (tokenizer.model through libsentencepiece) for real
// vocabularies, bytes (id = byte + 3, bos 1, eos 2) for models without one.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engine {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  /// The raw bytes a token stands for, with SentencePiece's "▁" as a space and <0xNN> pieces as that byte.
  virtual std::string token_bytes(int32_t id) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual std::string describe() const = 0;  ///< path or "bytes"
};

/// `path` empty → bytes tokenizer. Throws ModelLoadError (engine/engine.h) naming the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace engine
