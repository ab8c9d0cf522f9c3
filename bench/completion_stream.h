// The SSE body of one streamed OpenAI completion as llm-serve writes it: `tokens` chunks, each with its
// choices[0].logprobs (the chosen token and k alternatives, named "token_id:<id>" as vLLM does) when k >= 0,
// then the closing chunk with usage and [DONE]. Shared by the in-memory and the instant-server benches of
// --dump-logprobs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bench {

inline std::string completion_stream(int k, int tokens) {
  using nlohmann::json;
  std::string body;
  for (int t = 0; t < tokens; ++t) {
    json lp = nullptr;
    if (k >= 0) {
      json top = json::object();
      for (int i = 0; i < k; ++i) top["token_id:" + std::to_string(100 + i)] = -0.1 - 0.37 * i;
      lp = {{"tokens", {"token_id:100"}}, {"token_logprobs", {-0.1}}, {"top_logprobs", {top}}, {"text_offset", {t * 3}}};
    }
    json chunk = {{"id", "cmpl-1"}, {"object", "text_completion"}, {"created", 1}, {"model", "m"},
                  {"choices", {{{"index", 0}, {"text", " ab"}, {"logprobs", lp}, {"finish_reason", nullptr}}}}};
    body += "data: " + chunk.dump() + "\n\n";
  }
  body += "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"length\"}],"
          "\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":" + std::to_string(tokens) +
          ",\"total_tokens\":" + std::to_string(8 + tokens) + "}}\n\ndata: [DONE]\n\n";
  return body;
}

}  // namespace bench
