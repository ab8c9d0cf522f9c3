// The logits file (logits_file.h): LogitsWriter (logits_writer.cc) and LogitsReader (logits_reader.cc) over the HDF5
// C API, in the layout of docs/formats.md and ../shared/references:
//   /                 attrs format="llm-logits" (vlen UTF-8), version=1|2|3 (int64), model, vocab_size (int64), dtype,
//                     producer, top_k (int64, versions 2 and 3)
//   /requests/<id>/   attrs prompt_sha256, prompt_text (optional), unmapped (version 2)
//       prompt_tokens int32 [n_prompt];  tokens int32 [n_steps];  logits f32|f16 [n_steps, vocab]   (version 1)
//       or token_logprobs f32 [n_steps], top_ids int32 [n_steps, K], top_logprobs f32 [n_steps, K]  (version 2)
//   version 3 (top-K): no /requests; every request's rows appended to chunked datasets at the root,
//       index int64 [n_requests, 9] (kIndexColumns), ids uint8, prompt_text uint8, prompt_tokens int32,
//       tokens int32, token_logprobs f32 [total steps], top_ids int32, top_logprobs f32 [total steps, K]
// Versions 1 and 2 are written request by request as they come; version 3 keeps a batch in memory and appends
// it when a flush is due (a group and five datasets per request cost ~100 us of HDF5 calls; an append of a
// batch costs that once). All go into "<path>.tmp", flushed at most every WriterOptions::flush_interval_s (a
// killed run's temporary file holds the requests up to the last flush), renamed on close().
// This file holds what both sides share: the prompt hash and the logits dtype names.
#include "accuracy/logits_file.h"

#include <cstddef>
#include <cstdint>
#include <vector>

#include "accuracy/sha256.h"
#include "common/enum_names.h"

namespace accuracy {

std::string prompt_sha256(std::span<const int32_t> tokens) {
  // The hash is over little-endian int32 bytes; serialise explicitly so a big-endian host agrees.
  std::vector<std::byte> bytes(tokens.size() * 4);
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto u = static_cast<uint32_t>(tokens[i]);
    for (int b = 0; b < 4; ++b) bytes[4 * i + b] = static_cast<std::byte>((u >> (8 * b)) & 0xff);
  }
  return sha256_hex(bytes);
}

namespace {
constexpr auto kLogitsDTypeNames =
    common::enum_names<LogitsDType>({{LogitsDType::kFloat32, "float32"}, {LogitsDType::kFloat16, "float16"}});
}  // namespace

const char* to_string(LogitsDType d) { return kLogitsDTypeNames.name(d); }
LogitsDType parse_logits_dtype(const std::string& text, const std::string& what) {
  return kLogitsDTypeNames.parse(text, what);
}

}  // namespace accuracy
