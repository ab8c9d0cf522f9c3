// Token ids in, text out. SentencePiece (tokenizer.model through libsentencepiece) for real vocabularies,
// bytes (id = byte + 3, bos 1, eos 2) for models without one.
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

/// `path` empty → bytes tokenizer. Throws ModelLoadError naming the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

/// Turns a stream of token ids into text deltas that never split a UTF-8 character.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  /// Returns the complete characters that token `id` finishes (may be empty).
  std::string push(int32_t id);
  /// Whatever is left (an incomplete character is emitted as U+FFFD).
  std::string flush();

 private:
  const Tokenizer& tok_;
  std::string pending_;  ///< bytes of an unfinished UTF-8 character
};

}  // namespace engine
