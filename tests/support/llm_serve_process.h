// llm-serve as a child process on a free loopback port (the port read from its "listening on" line), for
// end-to-end tests that drive it with the loadgen binary; killed when the object goes.
#pragma once

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_paths.h"

extern char** environ;

namespace serve_process {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class LlmServe {
 public:
  LlmServe(const std::vector<std::string>& extra, const std::filesystem::path& log) : log_(log) {
    std::vector<std::string> args = {testing_paths::binary("engine/server/llm-serve").string(), "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    if (pipe(fds) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    out_fd_ = fds[0];
    std::string out;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (pid_ > 0 && std::chrono::steady_clock::now() < end) {
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      const ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      const std::string key = "listening on http://127.0.0.1:";
      if (auto pos = out.find(key); pos != std::string::npos && out.find('\n', pos) != std::string::npos) {
        port_ = std::stoi(out.substr(pos + key.size()));
        return;
      }
    }
  }
  ~LlmServe() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
  }
  LlmServe(const LlmServe&) = delete;
  LlmServe& operator=(const LlmServe&) = delete;
  bool ok() const { return port_ > 0; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return slurp(log_); }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = -1;
};

}  // namespace serve_process
