#include "http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_set>

#include "api_format.h"
#include "generation.h"
#include "logprobs_format.h"
#include "metrics.h"
#include "prompt_scoring.h"
#include "request_parser.h"
#include "engine/tokenizer.h"

namespace server {

namespace {

enum class Route { kOpenAI, kTgiGenerate, kTgiStream, kModelsGenerate };

const char* route_label(Route r) {
  switch (r) {
    case Route::kOpenAI: return "/v1/completions";
    case Route::kTgiGenerate: return "/generate";
    case Route::kTgiStream: return "/generate_stream";
    case Route::kModelsGenerate: return "/models/{name}/generate";
  }
  return "?";
}

Api route_api(Route r) { return r == Route::kOpenAI ? Api::kOpenAI : Api::kTgi; }

void set_error(httplib::Response& res, Api api, int status, const std::string& message, const char* type,
               const std::string& param) {
  res.status = status;
  res.set_content(api == Api::kOpenAI ? openai_error_body(message, type, param) : tgi_error_body(message, type, param),
                  "application/json");
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// How long a streaming worker waits for the engine before writing an SSE comment: a write is the only way
// to notice that the client has gone away while its request still waits for a batch slot.
constexpr auto kPingInterval = std::chrono::milliseconds(1000);
// How long stop() waits for aborted requests to send their last event before closing connections.
constexpr auto kDrainTimeout = std::chrono::milliseconds(5000);

}  // namespace

struct HttpServer::Impl {
  Impl(engine::Engine& e, ServerOptions o) : engine(e), opt(std::move(o)) {
    const auto& info = engine.info();
    limits.max_new_tokens = info.max_model_len > 0 ? info.max_model_len : 1 << 20;
    limits.vocab_size = info.vocab_size;
    if (opt.served_model_name.empty()) opt.served_model_name = info.model;
    // The logprob fields name tokens by their bytes: the engine's own tokenizer, loaded once more here.
    const auto tok = engine::load_tokenizer(info.tokenizer == "bytes" ? std::string() : info.tokenizer);
    token_texts = std::make_unique<TokenTexts>(*tok);
  }

  engine::Engine& engine;
  ServerOptions opt;
  httplib::Server http;
  ServerMetrics metrics;
  ParseLimits limits;
  std::unique_ptr<TokenTexts> token_texts;
  int port = -1;
  int listen_fd = -1;

  std::mutex mu;
  std::unordered_set<uint64_t> active;  ///< engine ids in flight (aborted on stop)
  bool stopping = false;
  std::atomic<bool> in_run{false};

  void install_routes();
  void generate(const httplib::Request& req, httplib::Response& res, Route route);
  void stream(std::shared_ptr<Generation> g, httplib::Response& res);
  void wait_answer(const std::shared_ptr<Generation>& g, httplib::Response& res);
  std::condition_variable drained;  ///< signalled as `active` empties
  void release(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    active.erase(id);
    if (active.empty()) drained.notify_all();
  }
};

void HttpServer::Impl::generate(const httplib::Request& req, httplib::Response& res, Route route) {
  const auto received = engine::Clock::now();
  const Api api = route_api(route);
  const std::string label = route_label(route);
  ParsedRequest parsed;
  int prompt_steps = 0;
  try {
    if (api == Api::kOpenAI) {
      parsed = parse_openai_completion(req.body, limits);
      if (parsed.model.empty()) parsed.model = opt.served_model_name;
    } else {
      parsed = parse_tgi_generate(req.body, route == Route::kTgiStream, route == Route::kModelsGenerate, limits);
    }
    engine::Request& r = parsed.request;
    if (r.prompt_tokens.empty()) r.prompt_tokens = engine.tokenize(r.prompt, r.add_bos);
    const int max_len = engine.info().max_model_len;
    const size_t total = r.prompt_tokens.size() + static_cast<size_t>(r.sampling.max_new_tokens);
    if (max_len > 0 && total > static_cast<size_t>(max_len))
      throw BadRequest(parsed.prompt_field,
                       "prompt is " + std::to_string(r.prompt_tokens.size()) + " tokens; with " +
                           std::to_string(r.sampling.max_new_tokens) + " new tokens that exceeds max_model_len " +
                           std::to_string(max_len));
    prompt_steps = prepare_logprobs(parsed, engine.info().eos_id);
  } catch (const BadRequest& e) {
    set_error(res, api, 400, e.what(), "invalid_request_error", e.field);
    metrics.count_request(label, 400);
    return;
  }

  auto g = std::make_shared<Generation>(std::move(parsed), label, received, engine.info().eos_id, unix_now(),
                                        prompt_steps, token_texts.get());
  uint64_t id = 0;
  try {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) {
      set_error(res, api, 503, "server is shutting down", "unavailable", "");
      metrics.count_request(label, 503);
      return;
    }
    id = engine.submit(g->parsed().request, g->sink);
    active.insert(id);
  } catch (const engine::QueueFullError& e) {
    set_error(res, api, 503, std::string("queue full: ") + e.what(), "overloaded", "");
    metrics.count_request(label, 503);
    return;
  } catch (const engine::InvalidRequestError& e) {
    set_error(res, api, 400, e.what(), "invalid_request_error", g->parsed().prompt_field);
    metrics.count_request(label, 400);
    return;
  }
  g->set_id(id);
  if (g->parsed().stream) stream(std::move(g), res);
  else wait_answer(g, res);
}

void HttpServer::Impl::wait_answer(const std::shared_ptr<Generation>& g, httplib::Response& res) {
  std::vector<StreamSink::Item> items;
  std::string unused;
  while (!g->finished()) {
    g->sink->wait_pop(items, kPingInterval);
    g->consume(items, unused);
  }
  release(g->id());
  g->record_metrics(metrics);
  res.status = g->response_status();
  res.set_content(g->response_body(), "application/json");
  metrics.count_request(g->route(), res.status);
}

void HttpServer::Impl::stream(std::shared_ptr<Generation> g, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, g](size_t, httplib::DataSink& sink) {
        std::vector<StreamSink::Item> items;
        if (!g->sink->wait_pop(items, kPingInterval)) {
          static constexpr char kPing[] = ": ping\n\n";
          return sink.write(kPing, sizeof kPing - 1);  // false: the client is gone; the releaser aborts
        }
        std::string out;
        const bool done = g->consume(items, out);
        if (!out.empty() && !sink.write(out.data(), out.size())) return false;
        if (done) {
          g->record_metrics(metrics);
          metrics.count_request(g->route(), g->final_status());
          sink.done();
        }
        return true;
      },
      [this, g](bool /*success*/) {
        // Runs when the response is destroyed, however the stream ended. Unfinished means the client went
        // away (or a write failed): abort so the engine frees the sequence's KV blocks now.
        if (!g->finished()) {
          engine.abort(g->id());
          metrics.count_request(g->route(), 499);
        }
        release(g->id());
      });
}

void HttpServer::Impl::install_routes() {
  http.new_task_queue = [n = opt.http_threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  http.set_payload_max_length(opt.max_body_bytes);
  http.set_keep_alive_max_count(100000);
  // Each SSE event is a small write; with Nagle's algorithm it would wait for the previous one's delayed
  // ACK (~40 ms), which a client would measure as the server's inter-token latency.
  http.set_tcp_nodelay(true);

  http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& s) { generate(q, s, Route::kOpenAI); });
  http.Post("/generate", [this](const httplib::Request& q, httplib::Response& s) { generate(q, s, Route::kTgiGenerate); });
  http.Post("/generate_stream", [this](const httplib::Request& q, httplib::Response& s) { generate(q, s, Route::kTgiStream); });
  http.Post(R"(/models/([^/]+)/generate)",
            [this](const httplib::Request& q, httplib::Response& s) { generate(q, s, Route::kModelsGenerate); });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    bool down;
    {
      std::lock_guard<std::mutex> lock(mu);
      down = stopping;
    }
    const auto st = engine.stats();
    nlohmann::json j = {{"status", down ? "shutting down" : "ok"}, {"running", st.running}, {"waiting", st.waiting}};
    res.status = down ? 503 : 200;
    res.set_content(j.dump(), "application/json");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const auto& info = engine.info();
    nlohmann::json m = {{"id", opt.served_model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "llm-serve"},
                        {"max_model_len", info.max_model_len}};
    res.set_content(nlohmann::json({{"object", "list"}, {"data", nlohmann::json::array({m})}})
                        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  });
  http.Get("/info", [this](const httplib::Request&, httplib::Response& res) {  // TGI's model info route
    const auto& info = engine.info();
    nlohmann::json j = {{"model_id", opt.served_model_name}, {"max_total_tokens", info.max_model_len},
                        {"max_input_length", info.max_model_len - 1}, {"max_batch_size", info.max_num_seqs},
                        {"backend", info.backend}, {"dtype", info.dtype}, {"tokenizer", info.tokenizer}};
    res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(engine.stats(), engine.info()), "text/plain; version=0.0.4");
  });

  // Unknown routes, oversized bodies and malformed HTTP: a JSON error instead of an empty body.
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 404   ? "no route " + req.method + " " + req.path
                      : res.status == 413 ? "body larger than " + std::to_string(opt.max_body_bytes) + " bytes"
                                          : "HTTP " + std::to_string(res.status);
    res.set_content(openai_error_body(msg, res.status == 404 ? "not_found" : "invalid_request_error", ""), "application/json");
    metrics.count_request(res.status == 404 ? "unknown" : req.path, res.status);
  });
  http.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(openai_error_body("internal error: " + what, "server_error", ""), "application/json");
    metrics.count_request(req.path, 500);
  });
}

HttpServer::HttpServer(engine::Engine& engine, ServerOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {
  if (impl_->opt.http_threads < 1) throw std::invalid_argument("--http-threads must be >= 1");
  impl_->install_routes();
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  std::signal(SIGPIPE, SIG_IGN);  // a write to a closed connection must fail, not kill the server
  Impl& m = *impl_;
  m.http.set_socket_options([&m](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    m.listen_fd = sock;
  });
  if (m.opt.port == 0) {
    m.port = m.http.bind_to_any_port(m.opt.host);
  } else {
    m.port = m.http.bind_to_port(m.opt.host, m.opt.port) ? m.opt.port : -1;
  }
  if (m.port <= 0)
    throw std::runtime_error("cannot listen on " + m.opt.host + ":" + std::to_string(m.opt.port) +
                             " (address in use, or not an address of this host)");
  // cpp-httplib was built with a listen backlog of 5; a burst of 1,000 connects would see SYNs dropped
  // and 1 s retransmits. listen() again on a listening socket just raises the backlog.
  if (m.listen_fd >= 0) ::listen(m.listen_fd, SOMAXCONN);
  return m.port;
}

void HttpServer::run() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->in_run = true;
  }
  impl_->http.listen_after_bind();
  impl_->in_run = false;
}

void HttpServer::stop() {
  Impl& m = *impl_;
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stopping = true;
    ids.assign(m.active.begin(), m.active.end());
  }
  for (uint64_t id : ids) m.engine.abort(id);
  {
    // Let the aborted streams write their closing error event: once httplib is stopped it cuts every
    // chunked response short, which a client would record as "connection reset" instead of "aborted".
    std::unique_lock<std::mutex> lock(m.mu);
    m.drained.wait_for(lock, kDrainTimeout, [&] { return m.active.empty(); });
  }
  // run() may be between its check and httplib's loop start: keep trying until the loop runs or is over.
  for (;;) {
    if (m.http.is_running()) {
      m.http.stop();
      break;
    }
    if (!m.in_run) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

int HttpServer::port() const { return impl_->port; }
const ServerMetrics& HttpServer::metrics() const { return impl_->metrics; }

}  // namespace server
