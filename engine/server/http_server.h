// llm-serve's HTTP front end (cpp-httplib): OpenAI /v1/completions and /v1/chat/completions, TGI /generate and
// /generate_stream, the competition's /models/<name>/generate, /health, /v1/models, /metrics and vLLM's
// POST /reset_prefix_cache, all driving one engine::Engine.
// Each streamed request is one engine request whose events reach the client through a StreamSink queue;
// a client that goes away aborts its engine request so its KV blocks are freed.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "chat_template.h"
#include "engine/engine.h"

namespace server {

class ServerMetrics;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8835;                   ///< 0: any free port (bind() returns it)
  int http_threads = 512;            ///< connections served at once (each stream holds one thread)
  std::string served_model_name;     ///< the id /v1/models reports; empty: the engine's model as given
  size_t max_body_bytes = 8u << 20;  ///< larger bodies get 413
  ChatTemplate chat_template = ChatTemplate::kLlama2;  ///< how /v1/chat/completions renders messages
};

class HttpServer {
 public:
  HttpServer(engine::Engine& engine, ServerOptions options);
  ~HttpServer();  ///< stops if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds the listening socket; returns the port (the one picked, for port 0). Throws std::runtime_error
  /// naming host:port when that fails.
  int bind();
  /// Serves until stop(); returns once every connection's worker has ended.
  void run();
  /// Thread-safe, idempotent: refuses new requests (503), aborts the ones in flight (their streams end with
  /// an error event), closes the listening socket. run() then returns.
  void stop();

  int port() const;
  const ServerMetrics& metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace server
