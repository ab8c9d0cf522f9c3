#include "request_validation.h"

#include <cmath>

#include "kv/block_manager.h"

namespace engine {

namespace {

void check_ids(const std::string& who, std::span<const int32_t> ids, const char* field, int vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size)
      throw InvalidRequestError(who + ": " + field + "[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                                " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
}

}  // namespace

std::string request_name(const Request& r) { return r.tag.empty() ? std::string("request") : "request '" + r.tag + "'"; }

void validate_request(const Request& r, std::span<const int32_t> prompt, const EngineInfo& info) {
  const std::string who = request_name(r);
  if (prompt.empty()) throw InvalidRequestError(who + ": empty prompt");
  check_ids(who, prompt, "prompt_tokens", info.vocab_size);
  check_ids(who, r.forced_tokens, "forced_tokens", info.vocab_size);
  const SamplingParams& sp = r.sampling;
  if (sp.max_new_tokens < 1) throw InvalidRequestError(who + ": max_new_tokens must be >= 1, got " + std::to_string(sp.max_new_tokens));
  if (!(sp.temperature >= 0.0f) || !std::isfinite(sp.temperature))
    throw InvalidRequestError(who + ": temperature must be a finite number >= 0, got " + std::to_string(sp.temperature));
  if (sp.top_k < 0) throw InvalidRequestError(who + ": top_k must be >= 0, got " + std::to_string(sp.top_k));
  if (!(sp.top_p > 0.0f && sp.top_p <= 1.0f)) throw InvalidRequestError(who + ": top_p must be in (0, 1], got " + std::to_string(sp.top_p));
  for (const auto& s : sp.stop)
    if (s.empty()) throw InvalidRequestError(who + ": empty stop string");
  if (r.capture_logits_steps < 0) throw InvalidRequestError(who + ": capture_logits_steps must be >= 0");
  const int64_t total = static_cast<int64_t>(prompt.size()) + sp.max_new_tokens;
  if (total > info.max_model_len)
    throw InvalidRequestError(who + ": prompt of " + std::to_string(prompt.size()) + " tokens + max_new_tokens " +
                              std::to_string(sp.max_new_tokens) + " = " + std::to_string(total) +
                              " tokens exceeds max_model_len " + std::to_string(info.max_model_len));
  const int64_t blocks = blocks_for(total, info.block_size);
  if (blocks > info.num_kv_blocks)
    throw InvalidRequestError(who + ": " + std::to_string(total) + " tokens need " + std::to_string(blocks) +
                              " KV blocks but the pool has only " + std::to_string(info.num_kv_blocks));
}

}  // namespace engine
