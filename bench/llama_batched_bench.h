// llama.cpp's `llama-batched-bench` as the peer of decode_step_bench: runs it on a GGUF of the same shapes
// (B sequences with their own prompt of `prompt` tokens, then `gen` decode steps of all B together; not
// shared, so each sequence has its own KV as in our bench) and reads its JSON lines: S_TG, generated tokens
// per second at each batch size.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

/// speed_tg by batch size (pl) from llama-batched-bench's `--output-format jsonl` stdout; other lines (logs)
/// are skipped. A JSON line without pl or speed_tg is an error naming `source` and the line number.
inline std::map<int, double> parse_batched_bench_jsonl(std::istream& in, const std::string& source) {
  std::map<int, double> out;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.empty() || line[0] != '{') continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(source + ": line " + std::to_string(no) + " is not JSON: " + e.what());
    }
    if (!j.contains("pl") || !j["pl"].is_number_integer() || !j.contains("speed_tg") || !j["speed_tg"].is_number())
      throw std::runtime_error(source + ": line " + std::to_string(no) + " has no integer \"pl\" and numeric \"speed_tg\"");
    out[j["pl"].get<int>()] = j["speed_tg"].get<double>();
  }
  return out;
}

/// Single-quotes a word for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct LlamaBatchedBench {
  std::string binary;      ///< path of llama-batched-bench
  std::string model;       ///< GGUF
  int threads = 2;         ///< -t and -tb
  int prompt = 128;        ///< -npp: tokens in the KV cache before the first timed step
  int gen = 16;            ///< -ntg: decode steps timed (context prompt .. prompt + gen - 1)
  std::string extra_args;  ///< appended as they are (e.g. "-fa" or "-ctk f32 -ctv f32")

  std::string command(const std::vector<int>& batches) const {
    std::string npl;
    int max_b = 1;
    for (int b : batches) {
      if (!npl.empty()) npl += ',';
      npl += std::to_string(b);
      max_b = std::max(max_b, b);
    }
    const int ctx = max_b * (prompt + gen);
    std::string cmd = shell_quote(binary) + " -m " + shell_quote(model) + " -c " + std::to_string(ctx) +
                      " -b 2048 -ub 512 -npp " + std::to_string(prompt) + " -ntg " + std::to_string(gen) + " -npl " +
                      npl + " -t " + std::to_string(threads) + " -tb " + std::to_string(threads) +
                      " --output-format jsonl";
    if (!extra_args.empty()) cmd += " " + extra_args;
    return cmd;
  }

  /// Runs it once; tokens/s by batch size. Throws naming the binary, exit status and the end of its stderr.
  std::map<int, double> run(const std::vector<int>& batches) const {
    char err_path[] = "/tmp/llama_batched_bench_XXXXXX";
    const int fd = mkstemp(err_path);
    if (fd < 0) throw std::runtime_error("llama-batched-bench: cannot create a temporary file for its stderr");
    close(fd);
    const std::string cmd = command(batches) + " 2>" + shell_quote(err_path);
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) throw std::runtime_error("cannot start " + binary);
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int status = pclose(p);
    std::ifstream ef(err_path);
    std::stringstream es;
    es << ef.rdbuf();
    std::remove(err_path);
    if (status != 0) {
      std::string tail = es.str();
      if (tail.size() > 2000) tail = "..." + tail.substr(tail.size() - 2000);
      throw std::runtime_error(binary + " failed (wait status " + std::to_string(status) + "); command: " +
                               command(batches) + "\n" + tail);
    }
    std::istringstream in(out);
    auto speeds = parse_batched_bench_jsonl(in, binary + "'s output");
    for (int b : batches)
      if (!speeds.count(b))
        throw std::runtime_error(binary + " printed no result for batch size " + std::to_string(b) + "; command: " +
                                 command(batches));
    return speeds;
  }
};

}  // namespace bench
