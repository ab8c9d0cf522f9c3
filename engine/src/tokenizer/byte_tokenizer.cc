#include "tokenizer/byte_tokenizer.h"

#include <stdexcept>

#include "tokenizer/utf8.h"

namespace engine {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  explicit ByteTokenizer(int vocab_size) : vocab_size_(vocab_size) {}

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() + 1);
    if (add_bos) ids.push_back(bos_id());
    for (char c : text) ids.push_back(static_cast<int32_t>(static_cast<unsigned char>(c)) + kByteTokenOffset);
    return ids;
  }

  std::string decode(std::span<const int32_t> ids) const override {
    std::string bytes;
    for (int32_t id : ids) bytes += token_bytes(id);
    // Arbitrary byte ids can spell ill-formed UTF-8: replace it as StreamDecoder does, so that the
    // concatenated stream deltas equal decode() of the same ids.
    std::string text;
    append_valid_utf8(bytes, text, /*final=*/true);
    return text;
  }

  std::string token_bytes(int32_t id) const override {
    if (id < kByteTokenOffset || id >= kByteVocabSize) return {};
    return std::string(1, static_cast<char>(id - kByteTokenOffset));
  }

  int vocab_size() const override { return vocab_size_; }
  int bos_id() const override { return 1; }
  int eos_id() const override { return 2; }
  std::string describe() const override { return "bytes"; }

 private:
  int vocab_size_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer(int vocab_size) {
  if (vocab_size < kByteVocabSize)
    throw std::invalid_argument("byte tokenizer: vocab_size " + std::to_string(vocab_size) + " is below 259");
  return std::make_unique<ByteTokenizer>(vocab_size);
}

}  // namespace engine
