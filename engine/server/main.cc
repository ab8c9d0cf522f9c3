// llm-serve: loads one model into engine::Engine and serves it over HTTP until SIGTERM/SIGINT.
// Prints "listening on http://HOST:PORT" once the socket is bound (scripts and tests wait for that line).
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <thread>

#include "http_server.h"
#include "server_options.h"

namespace {

// Self-pipe: the handler only writes the signal number; a normal thread reads it and stops the server.
// (Masking the signals instead is not enough: libraries such as OpenBLAS start threads before main().)
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &b, 1);
}

void install_handlers() {
  if (pipe(g_signal_pipe) != 0) throw std::runtime_error("pipe() failed");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  int code = 0;
  auto settings = server::parse_serve_command_line(argc, argv, &code);
  if (!settings) return code;
  try {
    install_handlers();
    std::fprintf(stderr, "llm-serve: loading %s\n", server::describe(*settings).c_str());
    engine::Engine engine(settings->engine);
    const auto& info = engine.info();
    std::fprintf(stderr, "llm-serve: model %s (vocab %d, max_model_len %d, %lld KV blocks, tokenizer %s)\n",
                 info.model.c_str(), info.vocab_size, info.max_model_len, static_cast<long long>(info.num_kv_blocks),
                 info.tokenizer.c_str());
    server::HttpServer http(engine, settings->server);
    const int port = http.bind();

    std::thread watcher([&] {
      unsigned char sig = 0;
      while (read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
      }
      if (sig != 0) std::fprintf(stderr, "llm-serve: %s, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      http.stop();  // refuse new requests, abort those in flight, close the listener
    });

    std::printf("listening on http://%s:%d\n", settings->server.host.c_str(), port);
    std::fflush(stdout);
    http.run();
    // run() returned: by a signal (the watcher is done or finishing), or the listener failed: wake it.
    const unsigned char zero = 0;
    [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &zero, 1);
    watcher.join();
    std::fprintf(stderr, "llm-serve: stopped\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llm-serve: %s\n", e.what());
    return 1;
  }
  return 0;
}
