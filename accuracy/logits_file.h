// The HDF5 logits file both sides of an accuracy check use (docs/formats.md, "Logits files"):
//   /                 attrs format="llm-logits", version=1|2|3, model, vocab_size, dtype, producer, top_k (2, 3)
//   versions 1 and 2: a group per request
//   /requests/<id>/   attrs prompt_sha256, prompt_text (optional), unmapped (version 2)
//       prompt_tokens int32 [n_prompt];  tokens int32 [n_steps];  then either (dense, version 1)
//       logits float32|float16 [n_steps, vocab]   or (top-K, version 2, top_k = K > 0)
//       token_logprobs float32 [n_steps];  top_ids int32 [n_steps, K];  top_logprobs float32 [n_steps, K]
//   version 3 (top-K, what the writer writes now): every request's rows appended to one set of datasets
//       /index int64 [n_requests, 9] (where each request's rows are), /ids and /prompt_text uint8 (bytes),
//       /prompt_tokens, /tokens, /token_logprobs [total rows], /top_ids, /top_logprobs [total steps, K]
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace accuracy {

/// How the logits are stored: float32, or float16 at half the size (--logits-dtype).
enum class LogitsDType { kFloat32, kFloat16 };
const char* to_string(LogitsDType d);  ///< "float32" | "float16": the file's dtype attribute
/// The value named `text`; throws std::invalid_argument "<what>: expected float32 or float16, got '<text>'".
LogitsDType parse_logits_dtype(const std::string& text, const std::string& what);

/// Any problem reading or writing a logits file; what() names the file and the object.
struct LogitsFileError : std::runtime_error { using std::runtime_error::runtime_error; };

struct FileInfo {
  int version = 0;                ///< as read (1, 2 or 3); the writer ignores it (dense: 1, top-K: WriterOptions)
  std::string model;
  int vocab_size = 0;
  LogitsDType dtype = LogitsDType::kFloat32;  ///< how the logits are stored
  std::string producer;           ///< e.g. "loadgen 0.1 (cpu, batch 64)"
  /// 0: dense logits (written as version 1). K > 0: sparse top-K log-probabilities (version 2), e.g. from a
  /// server's logprobs fields; dtype is then the logprobs' storage (float32).
  int top_k = 0;
};

/// Ids in a top-K file that are not token ids: a row shorter than K is padded with kNoToken (logprob -inf);
/// a server's token string that maps to no single id (--tokenizer) is kUnmapped, never a guess.
inline constexpr int32_t kNoToken = -1;
inline constexpr int32_t kUnmapped = -2;

struct RequestLogits {
  std::string id;                      ///< dataset sample index as a decimal string
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;         ///< [n_steps]
  std::vector<float> logits;           ///< [n_steps * vocab], row-major (dense files)
  std::vector<float> token_logprobs;   ///< [n_steps]: logprob of tokens[s] (top-K files; NaN: none given)
  std::vector<int32_t> top_ids;        ///< [n_steps * K], most likely first (top-K files)
  std::vector<float> top_logprobs;     ///< [n_steps * K]
  int64_t unmapped = 0;                ///< top-K files: server strings that mapped to no single id
  std::string prompt_sha256;           ///< of the int32 prompt token ids' bytes (computed by the writer when empty)
  std::string prompt_text;             ///< optional
  int n_steps() const { return static_cast<int>(tokens.size()); }
};

struct WriterOptions {
  int compression = 0;            ///< gzip level 0-9 (0: none), chunked by step
  /// The temporary file is flushed (its requests readable after a crash) after a write when this long has
  /// passed since the last flush; 0: after every write. A flush costs ~0.4 ms of disk time, more than writing
  /// a top-K request, so a once-a-second flush is what keeps the client's ceiling (close() always flushes).
  double flush_interval_s = 1.0;
  /// The layout of a top-K file: 3 (rows appended to shared datasets, written in batches: what loadgen writes)
  /// or 2 (a group and five datasets per request, ~100 us each; kept for older readers and the tests).
  int top_k_version = 3;
};

/// Stores logits in info.dtype. Writes to "<path>.tmp" and renames to `path` in close(); a writer destroyed without close() (or a killed
/// process) leaves nothing under `path`.
class LogitsWriter {
 public:
  LogitsWriter(const std::string& path, const FileInfo& info, const WriterOptions& options = {});
  ~LogitsWriter();
  LogitsWriter(const LogitsWriter&) = delete;
  LogitsWriter& operator=(const LogitsWriter&) = delete;
  /// Adds one request (versions 1 and 2: written to the file at once; version 3: kept in a batch written to
  /// the file when a flush is due or the batch holds 4 MiB). Flushed per options.flush_interval_s: a request is
  /// in the temporary file, readable after a crash, from the first flush after its write.
  /// Throws LogitsFileError on a duplicate id.
  void write(const RequestLogits& r);
  void close();
  const std::string& path() const { return path_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

class LogitsReader {
 public:
  explicit LogitsReader(const std::string& path);  ///< throws LogitsFileError (missing file, not llm-logits, ...)
  ~LogitsReader();
  const FileInfo& info() const;
  std::vector<std::string> ids() const;            ///< sorted numerically where ids are numbers
  bool has(const std::string& id) const;
  RequestLogits read(const std::string& id) const; ///< logits always returned as float32
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Lower-case hex SHA-256 of the prompt tokens' int32 little-endian bytes.
std::string prompt_sha256(std::span<const int32_t> tokens);

}  // namespace accuracy
