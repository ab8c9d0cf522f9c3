// Client for remote engines over HTTP: OpenAI /v1/completions (SSE), TGI /generate_stream (SSE), and the
// competition's POST /models/<name>/generate. libcurl multi interface on one event-loop thread.
#pragma once

#include <memory>
#include <string>

#include "loadgen/clients/client.h"
#include "loadgen/clients/http_api.h"
#include "loadgen/clients/http_call.h"

namespace loadgen {

/// The model name sent when none is given or found: the contest's /models/llama2/generate.
inline constexpr const char* kDefaultModelName = "llama2";

struct HttpClientOptions {
  std::string endpoint;          ///< http://host:port (no trailing path)
  HttpApi api = HttpApi::kOpenAI;
  std::string model_name = kDefaultModelName;  ///< OpenAI "model" field; the <name> of /models/<name>/generate
  double request_timeout_s = 600;     ///< whole-request timeout; 0: none
  double connect_timeout_s = 10;
  int max_connections = 0;       ///< 0: unlimited (one connection per in-flight stream)
  std::string tokenizer;         ///< tokenizer.model to count output tokens when the server gives no usage
  HttpAccess access;             ///< --header lines (and the bearer token), --insecure
};

/// "http://host:port" without trailing slashes; throws std::invalid_argument naming --endpoint unless it is
/// http(s)://host[:port] with no path.
std::string normalize_endpoint(const std::string& endpoint);

/// Throws std::invalid_argument naming the option when the endpoint is malformed.
std::unique_ptr<Client> make_http_client(const HttpClientOptions& options);

}  // namespace loadgen
