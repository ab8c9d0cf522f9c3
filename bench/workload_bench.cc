// The new workload paths' own cost (issue 12, must show 4): reading ShareGPT JSON (bytes and conversations
// per second, the parse and the checks of every turn) and drawing random prompts of an exact length (prompts
// and tokens per second, each prompt re-encoded and checked), with the byte tokenizer and, when ../shared has
// it (LLM_SHARED_DIR), Llama 2's SentencePiece tokenizer.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/tokenizer.h"
#include "loadgen/workload/dataset.h"
#include "loadgen/workload/random_prompt.h"

namespace {

/// `n` conversations of `turns` human/gpt exchanges, ~60-word messages, as one ShareGPT JSON text.
std::string sharegpt_text(int n, int turns) {
  std::mt19937_64 rng(1);
  const char* words[] = {"the", "model", "serving", "latency", "token", "batch", "cache", "request", "answer", "query"};
  auto message = [&] {
    std::string m;
    for (int w = 0; w < 60; ++w) m += std::string(w ? " " : "") + words[rng() % 10];
    return m;
  };
  nlohmann::json arr = nlohmann::json::array();
  for (int i = 0; i < n; ++i) {
    nlohmann::json conv = nlohmann::json::array();
    for (int t = 0; t < turns; ++t) {
      conv.push_back({{"from", "human"}, {"value", message()}});
      conv.push_back({{"from", "gpt"}, {"value", message()}});
    }
    arr.push_back({{"id", "c" + std::to_string(i)}, {"conversations", conv}});
  }
  return arr.dump();
}

void BM_ShareGptParse(benchmark::State& state) {
  const std::string text = sharegpt_text(static_cast<int>(state.range(0)), 3);
  for (auto _ : state) {
    loadgen::Dataset ds = loadgen::parse_dataset(text, "bench.json");
    benchmark::DoNotOptimize(ds.samples.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0));  // conversations
}
BENCHMARK(BM_ShareGptParse)->Arg(2000)->Unit(benchmark::kMillisecond);

std::shared_ptr<engine::Tokenizer> tokenizer(const std::string& which) {
  if (which == "bytes") return engine::load_tokenizer("");
  const char* env = std::getenv("LLM_SHARED_DIR");
  const std::filesystem::path p = std::filesystem::path(env && *env ? env : LLM_SHARED_DIR) /
                                  "models/llama2-tokenizer/tokenizer.model";
  return std::filesystem::exists(p) ? engine::load_tokenizer(p.string()) : nullptr;
}

void random_prompts(benchmark::State& state, const std::string& which) {
  const auto tok = tokenizer(which);
  if (!tok) {
    state.SkipWithError("no Llama 2 tokenizer under LLM_SHARED_DIR");
    return;
  }
  const loadgen::RandomPromptGenerator gen(*tok);
  std::mt19937_64 rng(5);
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(gen.prompt(n, rng));
  state.SetItemsProcessed(state.iterations());  // prompts
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * n, benchmark::Counter::kIsRate);
}
void BM_RandomPromptBytes(benchmark::State& state) { random_prompts(state, "bytes"); }
void BM_RandomPromptLlama2(benchmark::State& state) { random_prompts(state, "llama2"); }
BENCHMARK(BM_RandomPromptBytes)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RandomPromptLlama2)->Arg(1024)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
