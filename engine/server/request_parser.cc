#include "request_parser.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

namespace server {

using nlohmann::json;

int json_depth(std::string_view text, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
      if (max_depth > limit) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

namespace {

const char* type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  return v.type_name();
}

json parse_object(std::string_view body, const ParseLimits& limits) {
  if (json_depth(body, limits.max_json_depth) > limits.max_json_depth)
    throw BadRequest("body", "JSON nested deeper than " + std::to_string(limits.max_json_depth) + " levels");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999
    throw BadRequest("body", std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw BadRequest("body", std::string("must be a JSON object, got ") + type_name(j));
  return j;
}

/// The member `key`, or nullptr when absent or null (null means "default" in both APIs).
const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> get_int(const json& obj, const char* key, const std::string& path) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw BadRequest(path, "integer out of range");
    return static_cast<int64_t>(v->get<uint64_t>());
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    // JSON has one number type; accept 5.0 but not 5.5 or 1e300.
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
    throw BadRequest(path, "must be an integer");
  }
  throw BadRequest(path, std::string("must be an integer, got ") + type_name(*v));
}

std::optional<uint64_t> get_seed(const json& obj, const char* key, const std::string& path) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  auto i = get_int(obj, key, path);
  if (*i < 0) throw BadRequest(path, "must be >= 0");
  return static_cast<uint64_t>(*i);
}

std::optional<double> get_number(const json& obj, const char* key, const std::string& path) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw BadRequest(path, std::string("must be a number, got ") + type_name(*v));
  const double d = v->get<double>();
  if (!std::isfinite(d)) throw BadRequest(path, "must be finite");
  return d;
}

/// With `strings`, "true" / "false" in any case are booleans too (the competition's client sends "True").
std::optional<bool> get_bool(const json& obj, const char* key, const std::string& path, bool strings = false) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (strings && v->is_string()) {
    std::string s = v->get<std::string>();
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s == "true") return true;
    if (s == "false") return false;
    throw BadRequest(path, "must be a boolean (or the string \"true\" or \"false\"), got the string '" +
                               v->get<std::string>() + "'");
  }
  if (!v->is_boolean()) throw BadRequest(path, std::string("must be a boolean, got ") + type_name(*v));
  return v->get<bool>();
}

std::optional<std::string> get_string(const json& obj, const char* key, const std::string& path) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw BadRequest(path, std::string("must be a string, got ") + type_name(*v));
  return v->get<std::string>();
}

std::vector<std::string> get_stop(const json& obj, const char* key, const std::string& path, const ParseLimits& limits) {
  const json* v = member(obj, key);
  if (!v) return {};
  std::vector<std::string> out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > limits.max_stop_strings)
      throw BadRequest(path, "at most " + std::to_string(limits.max_stop_strings) + " stop strings");
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) throw BadRequest(path + "[" + std::to_string(i) + "]", "must be a string");
      out.push_back((*v)[i].get<std::string>());
    }
  } else {
    throw BadRequest(path, std::string("must be a string or a list of strings, got ") + type_name(*v));
  }
  for (const auto& s : out)
    if (s.empty()) throw BadRequest(path, "stop strings must not be empty");
  return out;
}

int check_max_tokens(int64_t v, const std::string& path, const ParseLimits& limits) {
  if (v < 1 || v > limits.max_new_tokens)
    throw BadRequest(path, "must be between 1 and " + std::to_string(limits.max_new_tokens) + ", got " + std::to_string(v));
  return static_cast<int>(v);
}

float check_temperature(double t, const std::string& path) {
  if (t < 0 || t > 100) throw BadRequest(path, "must be between 0 and 100");
  return static_cast<float>(t);
}

float check_top_p(double p, const std::string& path) {
  if (!(p > 0 && p <= 1)) throw BadRequest(path, "must be in (0, 1]");
  return static_cast<float>(p);
}

int check_top_k(int64_t k, const std::string& path) {
  if (k < -1 || k > std::numeric_limits<int32_t>::max()) throw BadRequest(path, "must be -1, 0 (off) or a positive integer");
  return k < 0 ? 0 : static_cast<int>(k);
}

int check_logprobs(int64_t k, const std::string& path, const ParseLimits& limits) {
  if (k < 0 || k > limits.max_logprobs)
    throw BadRequest(path, "must be between 0 and " + std::to_string(limits.max_logprobs) + ", got " + std::to_string(k));
  return static_cast<int>(k);
}

// Prompt scoring decodes the prompt with its own tokens forced (engine/server/prompt_scoring.h): a stop string
// would match inside the prompt.
void check_scoring_without_stop(const ParsedRequest& out, const std::string& path) {
  if (out.logprobs.prompt_top_k >= 0 && !out.request.sampling.stop.empty())
    throw BadRequest(path, "stop strings cannot be combined with prompt scoring (echo, prompt_logprobs, decoder_input_details)");
}

// What /v1/completions and /v1/chat/completions share: sampling, stop, ignore_eos, stream, n.
void parse_openai_sampling(const json& j, ParsedRequest& out, const ParseLimits& limits) {
  engine::SamplingParams& s = out.request.sampling;
  if (auto t = get_number(j, "temperature", "temperature")) s.temperature = check_temperature(*t, "temperature");
  else s.temperature = 1.0f;  // OpenAI's default
  if (auto p = get_number(j, "top_p", "top_p")) s.top_p = check_top_p(*p, "top_p");
  if (auto k = get_int(j, "top_k", "top_k")) s.top_k = check_top_k(*k, "top_k");
  if (auto seed = get_seed(j, "seed", "seed")) s.seed = *seed;
  s.stop = get_stop(j, "stop", "stop", limits);
  s.ignore_eos = get_bool(j, "ignore_eos", "ignore_eos").value_or(false);
  out.stream = get_bool(j, "stream", "stream").value_or(false);
  if (const json* so = member(j, "stream_options"); so && !so->is_object())
    throw BadRequest("stream_options", std::string("must be an object, got ") + type_name(*so));
  if (auto n = get_int(j, "n", "n"); n && *n != 1) throw BadRequest("n", "only n = 1 is supported");
}

}  // namespace

void parse_chat_logprobs(const json& j, const ParseLimits& limits, LogprobsRequest& out) {
  const bool on = get_bool(j, "logprobs", "logprobs").value_or(false);
  const auto top = get_int(j, "top_logprobs", "top_logprobs");
  if (top && !on) throw BadRequest("top_logprobs", "needs \"logprobs\": true");
  if (on) out.top_k = top ? check_logprobs(*top, "top_logprobs", limits) : 0;
  out.token_ids = get_bool(j, "return_tokens_as_token_ids", "return_tokens_as_token_ids").value_or(false);
}

ParsedRequest parse_openai_completion(std::string_view body, const ParseLimits& limits) {
  const json j = parse_object(body, limits);
  ParsedRequest out;
  out.api = Api::kOpenAI;
  out.prompt_field = "prompt";
  engine::Request& r = out.request;
  engine::SamplingParams& s = r.sampling;

  out.model = get_string(j, "model", "model").value_or("");
  const json* prompt = member(j, "prompt");
  if (!prompt) throw BadRequest("prompt", "required");
  if (prompt->is_string()) {
    r.prompt = prompt->get<std::string>();
  } else if (prompt->is_array()) {
    // A list of token ids (OpenAI allows it; exact for benchmarks). A list of strings is a batch: refused.
    if (prompt->empty()) throw BadRequest("prompt", "empty list");
    for (size_t i = 0; i < prompt->size(); ++i) {
      const json& t = (*prompt)[i];
      const std::string path = "prompt[" + std::to_string(i) + "]";
      if (t.is_string()) throw BadRequest("prompt", "a list of prompts is not supported; send one string");
      if (!t.is_number_integer()) throw BadRequest(path, "must be a token id (integer)");
      const int64_t id = t.get<int64_t>();
      if (id < 0 || (limits.vocab_size > 0 && id >= limits.vocab_size) || id > std::numeric_limits<int32_t>::max())
        throw BadRequest(path, "token id " + std::to_string(id) + " outside the vocabulary");
      r.prompt_tokens.push_back(static_cast<int32_t>(id));
    }
  } else {
    throw BadRequest("prompt", std::string("must be a string or a list of token ids, got ") + type_name(*prompt));
  }

  LogprobsRequest& lp = out.logprobs;
  if (auto k = get_int(j, "logprobs", "logprobs")) lp.top_k = check_logprobs(*k, "logprobs", limits);
  lp.echo = get_bool(j, "echo", "echo").value_or(false);
  if (lp.echo && lp.top_k >= 0) lp.prompt_top_k = lp.top_k;
  if (auto k = get_int(j, "prompt_logprobs", "prompt_logprobs")) {
    lp.vllm_prompt = true;
    lp.prompt_top_k = std::max(lp.prompt_top_k, check_logprobs(*k, "prompt_logprobs", limits));
  }
  lp.token_ids = get_bool(j, "return_tokens_as_token_ids", "return_tokens_as_token_ids").value_or(false);
  // Scoring the prompt alone is the legacy `echo` with max_tokens 0 (and vLLM's prompt_logprobs likewise).
  const int64_t max_tokens = get_int(j, "max_tokens", "max_tokens").value_or(16);
  s.max_new_tokens = max_tokens == 0 && lp.prompt_top_k >= 0 ? 0 : check_max_tokens(max_tokens, "max_tokens", limits);
  parse_openai_sampling(j, out, limits);
  if (auto b = get_int(j, "best_of", "best_of"); b && *b != 1) throw BadRequest("best_of", "only best_of = 1 is supported");
  check_scoring_without_stop(out, "stop");
  return out;
}

namespace {

// A message's content: a string, or OpenAI's list of parts of which only {"type": "text", "text"} is taken.
std::string message_content(const json& m, const std::string& path) {
  const json* c = member(m, "content");
  if (!c) return "";  // an assistant message may carry none
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) throw BadRequest(path, std::string("must be a string or a list of parts, got ") + type_name(*c));
  std::string text;
  for (size_t i = 0; i < c->size(); ++i) {
    const json& part = (*c)[i];
    const std::string pp = path + "[" + std::to_string(i) + "]";
    if (!part.is_object()) throw BadRequest(pp, "must be an object {type, text}");
    const auto type = get_string(part, "type", pp + ".type");
    if (type.value_or("") != "text") throw BadRequest(pp + ".type", "only \"text\" parts are supported");
    text += get_string(part, "text", pp + ".text").value_or("");
  }
  return text;
}

}  // namespace

ParsedRequest parse_openai_chat(std::string_view body, const ParseLimits& limits) {
  const json j = parse_object(body, limits);
  ParsedRequest out;
  out.api = Api::kOpenAIChat;
  out.prompt_field = "messages";
  out.model = get_string(j, "model", "model").value_or("");
  const json* messages = member(j, "messages");
  if (!messages) throw BadRequest("messages", "required");
  if (!messages->is_array()) throw BadRequest("messages", std::string("must be a list, got ") + type_name(*messages));
  if (messages->empty()) throw BadRequest("messages", "empty list");
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string path = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw BadRequest(path, std::string("must be an object {role, content}, got ") + type_name(m));
    auto role = get_string(m, "role", path + ".role");
    if (!role) throw BadRequest(path + ".role", "required");
    out.messages.push_back({*role, message_content(m, path + ".content")});
  }
  // max_completion_tokens is the current name; max_tokens the deprecated one (vLLM: the former wins).
  auto max_tokens = get_int(j, "max_completion_tokens", "max_completion_tokens");
  std::string max_field = "max_completion_tokens";
  if (!max_tokens) {
    max_tokens = get_int(j, "max_tokens", "max_tokens");
    max_field = "max_tokens";
  }
  out.max_tokens_given = max_tokens.has_value();
  out.request.sampling.max_new_tokens = max_tokens ? check_max_tokens(*max_tokens, max_field, limits) : 1;
  parse_openai_sampling(j, out, limits);
  if (const json* so = member(j, "stream_options"))
    out.include_usage = get_bool(*so, "include_usage", "stream_options.include_usage").value_or(false);
  parse_chat_logprobs(j, limits, out.logprobs);
  if (const json* tools = member(j, "tools"); tools && !(tools->is_array() && tools->empty()))
    throw BadRequest("tools", "tool calls are not supported");
  return out;
}

ParsedRequest parse_tgi_generate(std::string_view body, bool stream_default, bool stream_from_body,
                                 const ParseLimits& limits, bool string_booleans) {
  auto get_bool = [string_booleans](const json& obj, const char* key, const std::string& path) {
    return server::get_bool(obj, key, path, string_booleans);
  };
  const json j = parse_object(body, limits);
  ParsedRequest out;
  out.api = Api::kTgi;
  out.prompt_field = "inputs";
  engine::Request& r = out.request;
  engine::SamplingParams& s = r.sampling;

  // Ours besides TGI's string: a list of token ids (what loadgen's teacher forcing sends, exact ids).
  if (const json* ids = member(j, "inputs"); ids && ids->is_array()) {
    if (ids->empty()) throw BadRequest("inputs", "empty list");
    for (size_t i = 0; i < ids->size(); ++i) {
      const json& t = (*ids)[i];
      const std::string path = "inputs[" + std::to_string(i) + "]";
      if (!t.is_number_integer()) throw BadRequest(path, "must be a token id (integer)");
      const int64_t id = t.get<int64_t>();
      if (id < 0 || (limits.vocab_size > 0 && id >= limits.vocab_size) || id > std::numeric_limits<int32_t>::max())
        throw BadRequest(path, "token id " + std::to_string(id) + " outside the vocabulary");
      r.prompt_tokens.push_back(static_cast<int32_t>(id));
    }
  } else {
    auto inputs = get_string(j, "inputs", "inputs");
    if (!inputs) throw BadRequest("inputs", "required");
    r.prompt = std::move(*inputs);
  }
  out.stream = stream_default;
  if (stream_from_body) {
    if (auto st = get_bool(j, "stream", "stream")) out.stream = *st;
  }

  static const json kEmpty = json::object();
  const json* params = member(j, "parameters");
  if (params && !params->is_object())
    throw BadRequest("parameters", std::string("must be an object, got ") + type_name(*params));
  const json& p = params ? *params : kEmpty;

  s.max_new_tokens = check_max_tokens(get_int(p, "max_new_tokens", "parameters.max_new_tokens").value_or(100),
                                      "parameters.max_new_tokens", limits);
  const auto do_sample = get_bool(p, "do_sample", "parameters.do_sample");
  const auto temperature = get_number(p, "temperature", "parameters.temperature");
  if (temperature) check_temperature(*temperature, "parameters.temperature");
  // TGI: sampling is on when asked (do_sample) or implied by a temperature; do_sample=false means greedy.
  if (do_sample.has_value() && !*do_sample) s.temperature = 0.0f;
  else if (temperature) s.temperature = static_cast<float>(*temperature);
  else s.temperature = do_sample.value_or(false) ? 1.0f : 0.0f;
  if (auto tp = get_number(p, "top_p", "parameters.top_p")) s.top_p = check_top_p(*tp, "parameters.top_p");
  if (auto k = get_int(p, "top_k", "parameters.top_k")) s.top_k = check_top_k(*k, "parameters.top_k");
  if (auto seed = get_seed(p, "seed", "parameters.seed")) s.seed = *seed;
  s.stop = get_stop(p, "stop", "parameters.stop", limits);
  s.ignore_eos = get_bool(p, "ignore_eos", "parameters.ignore_eos").value_or(false);
  out.return_full_text = get_bool(p, "return_full_text", "parameters.return_full_text").value_or(false);
  out.details = get_bool(p, "details", "parameters.details").value_or(false);
  // token.logprob stays null unless top_n_tokens asks for log-probabilities (they cost O(vocab) a token).
  if (auto n = get_int(p, "top_n_tokens", "parameters.top_n_tokens"))
    out.logprobs.top_k = check_logprobs(*n, "parameters.top_n_tokens", limits);
  if (get_bool(p, "decoder_input_details", "parameters.decoder_input_details").value_or(false)) {
    if (out.stream) throw BadRequest("parameters.decoder_input_details", "not supported when streaming tokens (as in TGI)");
    out.details = true;
    out.logprobs.prompt_top_k = std::max(out.logprobs.top_k, 0);
  }
  check_scoring_without_stop(out, "parameters.stop");
  if (auto rp = get_number(p, "repetition_penalty", "parameters.repetition_penalty"); rp && *rp != 1.0)
    throw BadRequest("parameters.repetition_penalty", "not supported (only 1.0)");
  return out;
}

}  // namespace server
