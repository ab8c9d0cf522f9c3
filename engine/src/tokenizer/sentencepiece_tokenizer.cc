#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "engine/engine.h"
#include "tokenizer/utf8.h"

namespace engine {
namespace {

constexpr std::string_view kWordBoundary = "\xE2\x96\x81";  // "▁" U+2581, SentencePiece's space

// What a piece stands for in running text: byte-fallback pieces "<0xNN>" are that byte, "▁" is a space,
// control and unused pieces are nothing, <unk> is SentencePiece's own surface " ⁇ ".
std::string piece_bytes(const sentencepiece::SentencePieceProcessor& sp, int id) {
  if (sp.IsControl(id) || sp.IsUnused(id)) return {};
  if (sp.IsUnknown(id)) return " \xE2\x81\x87 ";
  const std::string& piece = sp.IdToPiece(id);
  if (sp.IsByte(id)) {  // "<0x0A>"
    if (piece.size() == 6) return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
    return {};
  }
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kWordBoundary.size(), kWordBoundary) == 0) {
      out += ' ';
      i += kWordBoundary.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec)) throw ModelLoadError("tokenizer " + path + ": no such file");
    if (fs::is_directory(path, ec))
      throw ModelLoadError("tokenizer " + path + ": is a directory, expected a SentencePiece tokenizer.model file");
    const auto status = sp_.Load(path);
    if (!status.ok())
      throw ModelLoadError("tokenizer " + path + ": not a SentencePiece model (" + status.ToString() + ")");
    if (sp_.GetPieceSize() <= 0) throw ModelLoadError("tokenizer " + path + ": the vocabulary is empty");
    // Precomputed so streaming a token is a table lookup.
    bytes_.resize(sp_.GetPieceSize());
    for (int id = 0; id < sp_.GetPieceSize(); ++id) bytes_[id] = piece_bytes(sp_, id);
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int> pieces;
    const auto status = sp_.Encode(text, &pieces);
    if (!status.ok()) throw std::runtime_error("tokenizer " + path_ + ": encode failed: " + status.ToString());
    std::vector<int32_t> ids;
    ids.reserve(pieces.size() + 1);
    if (add_bos && sp_.bos_id() >= 0) ids.push_back(sp_.bos_id());
    ids.insert(ids.end(), pieces.begin(), pieces.end());
    return ids;
  }

  /// SentencePiece's own detokenisation (drops the leading space of the first word); ids outside the
  /// vocabulary are skipped rather than failing the whole decode.
  std::string decode(std::span<const int32_t> ids) const override {
    std::vector<int> valid;
    valid.reserve(ids.size());
    for (int32_t id : ids)
      if (id >= 0 && id < vocab_size()) valid.push_back(id);
    std::string text;
    const auto status = sp_.Decode(valid, &text);
    if (!status.ok()) throw std::runtime_error("tokenizer " + path_ + ": decode failed: " + status.ToString());
    return text;
  }

  std::string token_bytes(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return {};
    return bytes_[id];
  }

  int vocab_size() const override { return static_cast<int>(bytes_.size()); }
  int bos_id() const override { return sp_.bos_id(); }
  int eos_id() const override { return sp_.eos_id(); }
  std::string describe() const override { return path_; }

 private:
  std::string path_;
  sentencepiece::SentencePieceProcessor sp_;
  std::vector<std::string> bytes_;  // [vocab] token_bytes() of every id
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& path) {
  return std::make_unique<SentencePieceTokenizer>(path);
}

}  // namespace engine
