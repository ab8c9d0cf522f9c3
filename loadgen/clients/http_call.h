// One plain HTTP request outside the measured stream (blocking, its own libcurl easy handle): the model list
// (GET /v1/models), a prefix-cache reset (POST /reset_prefix_cache), a /metrics scrape. Also how a real
// deployment is reached: the user's --header lines, OPENAI_API_KEY as a bearer token, https with --insecure
// as an opt-in. The measured requests (http_client.cc) send the same headers.
#pragma once

#include <string>
#include <vector>

namespace loadgen {

/// How every request to the server goes out.
struct HttpAccess {
  std::vector<std::string> headers;  ///< "Name: value" lines, as request_headers() made them
  bool insecure = false;             ///< https: do not verify the server's certificate or host name
};

/// The header lines to send: each of `user_headers` ("K: V", --header, repeatable) checked, then
/// "Authorization: Bearer <api_key>" when api_key is set and no --header gave an Authorization.
/// Throws std::invalid_argument naming --header for a line without a name and a colon.
std::vector<std::string> request_headers(const std::vector<std::string>& user_headers, const std::string& api_key);

struct HttpAnswer {
  long status = 0;      ///< 0: no HTTP answer (see error)
  std::string body;
  std::string error;    ///< transport failure ("connection refused", "timeout"), "" when an answer came
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
  /// "HTTP 404: <body start>" or the transport error, for messages.
  std::string describe() const;
};

/// Sends `method` (GET or POST) to `url` and waits for the whole answer (at most timeout_s).
HttpAnswer http_call(const std::string& method, const std::string& url, const std::string& body,
                     const HttpAccess& access, double timeout_s);

/// The id of the first model GET <endpoint>/v1/models lists (vLLM, SGLang, llama.cpp, TGI's OpenAI layer,
/// llm-serve). Throws std::runtime_error naming --model-name when there is no answer or no model in it.
std::string first_served_model(const std::string& endpoint, const HttpAccess& access, double timeout_s = 10);

/// POST <endpoint>/reset_prefix_cache (vLLM's route, llm-serve's). Throws std::runtime_error naming
/// --reset-prefix-cache when the server does not answer 2xx (e.g. a server without the route).
void reset_prefix_cache(const std::string& endpoint, const HttpAccess& access, double timeout_s = 30);

}  // namespace loadgen
