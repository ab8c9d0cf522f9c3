// llm-serve: loads one model into engine::Engine and serves it over HTTP until SIGTERM/SIGINT.
// Prints "listening on http://HOST:PORT" once the socket is bound (scripts and tests wait for that line).
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <thread>

#include "http_server.h"
#include "server_options.h"

int main(int argc, char** argv) {
  int code = 0;
  auto settings = server::parse_serve_command_line(argc, argv, &code);
  if (!settings) return code;

  // Block the shutdown signals in every thread (the engine's and httplib's inherit this mask); one thread
  // waits for them with sigwait and stops the server from ordinary code, not from a signal handler.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  try {
    std::fprintf(stderr, "llm-serve: loading %s\n", server::describe(*settings).c_str());
    engine::Engine engine(settings->engine);
    const auto& info = engine.info();
    std::fprintf(stderr, "llm-serve: model %s (vocab %d, max_model_len %d, %lld KV blocks, tokenizer %s)\n",
                 info.model.c_str(), info.vocab_size, info.max_model_len, static_cast<long long>(info.num_kv_blocks),
                 info.tokenizer.c_str());
    server::HttpServer http(engine, settings->server);
    const int port = http.bind();

    std::thread watcher([&] {
      int sig = 0;
      sigwait(&sigs, &sig);
      std::fprintf(stderr, "llm-serve: %s, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      http.stop();
    });

    std::printf("listening on http://%s:%d\n", settings->server.host.c_str(), port);
    std::fflush(stdout);
    http.run();
    http.stop();  // run() also returns if the listener failed; make sure the watcher is not needed
    // Wake the watcher if no signal came (run() ended some other way).
    if (watcher.joinable()) {
      pthread_kill(watcher.native_handle(), SIGTERM);
      watcher.join();
    }
    std::fprintf(stderr, "llm-serve: stopped\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llm-serve: %s\n", e.what());
    return 1;
  }
  return 0;
}
