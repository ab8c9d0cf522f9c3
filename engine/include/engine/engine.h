// The engine's public API: one in-process LLM inference engine that loadgen's in-process client and the
// HTTP server (llm-serve) both drive. Thread-safe submit/abort/stats; the engine steps on its own thread
// (or, for tests, is stepped by the caller).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace engine {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- settings the user fills

enum class BackendKind { kCpu, kCuda };
/// What the forward pass computes in: auto is the backend's own choice (cpu f32, cuda bf16).
enum class ComputeDType { kAuto, kF32, kBf16 };

/// How the KV cache is stored: auto is the compute dtype; fp8 is e4m3 with a scale per (token, kv head) of K
/// and of V (CUDA, bf16 mode): about half the bytes of bf16.
enum class KvCacheDType { kAuto, kFp8 };

const char* to_string(BackendKind b);   ///< "cpu" | "cuda"
const char* to_string(ComputeDType d);  ///< "auto" | "f32" | "bf16"
const char* to_string(KvCacheDType d);  ///< "auto" | "fp8"
/// The value named `text`; throws std::invalid_argument "<what>: expected cpu or cuda, got '<text>'".
BackendKind parse_backend_kind(std::string_view text, std::string_view what);
ComputeDType parse_compute_dtype(std::string_view text, std::string_view what);
KvCacheDType parse_kv_cache_dtype(std::string_view text, std::string_view what);

struct EngineConfig {
  std::string model = "dummy:tiny";  ///< llama2.c .bin file, HF directory (config.json + *.safetensors), or dummy:<preset>
  uint64_t dummy_seed = 0;           ///< seed of dummy:<preset> weights
  /// Testing only: layer 0's wq is scaled by (1 + this) after loading, a planted change of one weight matrix
  /// for accuracy tools to catch (llm-serve --test-perturb-weight). 0: none.
  float test_perturb_weight = 0;
  std::string tokenizer;             ///< SentencePiece tokenizer.model; empty: <model dir>/tokenizer.model if present, else bytes
  BackendKind backend = BackendKind::kCpu;
  ComputeDType dtype = ComputeDType::kAuto;  ///< compute/weight dtype: cpu f32 only; cuda bf16 (auto) or f32
  KvCacheDType kv_cache_dtype = KvCacheDType::kAuto;  ///< fp8: e4m3 KV cache (cuda, bf16 mode)
  int max_num_seqs = 64;             ///< decode batch size: most sequences in one step
  int max_num_batched_tokens = 2048; ///< most tokens (prefill + decode) in one step
  int block_size = 16;               ///< tokens per KV-cache block
  int64_t num_kv_blocks = 0;         ///< KV blocks in the pool; 0: from kv_memory_bytes
  int64_t kv_memory_bytes = 0;       ///< KV pool budget; 0: cpu 512 MiB, cuda gpu_memory_utilization
  double gpu_memory_utilization = 0.9; ///< cuda: fraction of device memory for weights + KV + activations
  int max_model_len = 0;             ///< longest prompt + output; 0: the model's context length
  bool enable_chunked_prefill = true;///< split long prompts over steps, mixed with decodes
  bool deterministic = false;        ///< batch-invariant kernels: logits independent of batch size and order
  bool enable_prefix_caching = false;///< reuse cached K/V of full blocks shared with earlier prompts (LRU-evicted)
  int num_threads = 0;               ///< cpu threads; 0: OpenMP's default
  int max_waiting = 0;               ///< submit() throws QueueFullError past this many waiting; 0: unbounded
  bool background_thread = true;     ///< false: the caller steps the engine with step()/run_until_idle()
  /// Tensor parallelism: the model split over this many GPUs (Megatron-style; docs/tensor-parallel.md).
  /// N > 1 needs the cuda backend built with NCCL; check_tensor_parallel() says what else.
  int tensor_parallel_size = 1;
};

/// Checks config.tensor_parallel_size before anything is loaded: N >= 1; for N > 1 the model's shape (read
/// from config.json, the .bin header or the dummy preset's table: no weights are allocated) must split N
/// ways (attention heads, KV heads — which N may also be a multiple of, replicating them —, intermediate
/// size, vocabulary), and the backend, this build (NCCL) and the visible GPUs must allow it. Throws
/// std::invalid_argument "<option> N: ..." naming the dimension or the missing piece (ModelLoadError when the
/// model cannot be read). The Engine constructor runs the same checks with option "tensor_parallel_size".
void check_tensor_parallel(const EngineConfig& config, std::string_view option);

struct SamplingParams {
  int max_new_tokens = 128;          ///< tokens to generate (a stop or eos may end it earlier)
  float temperature = 0.0f;          ///< 0: greedy
  int top_k = 0;                     ///< 0: off
  float top_p = 1.0f;                ///< 1: off
  uint64_t seed = 0;                 ///< per-request sampling seed: same seed, same tokens
  bool ignore_eos = false;           ///< keep generating past eos
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;     ///< stop strings (matched on the decoded text; the match is not emitted)
};

struct Request {
  std::string prompt;                   ///< text; used when prompt_tokens is empty
  std::vector<int32_t> prompt_tokens;   ///< token ids used as given (no bos added)
  bool add_bos = true;                  ///< for text prompts
  SamplingParams sampling;
  std::vector<int32_t> forced_tokens;   ///< teacher forcing: step i emits forced_tokens[i] instead of sampling
  int capture_logits_steps = 0;         ///< deliver the raw logits of the first N steps to the sink
  std::string tag;                      ///< caller's label, for logs and errors
};

// ---------------------------------------------------------------- events

enum class FinishReason { kLength, kEos, kStop, kAborted, kError };
const char* to_string(FinishReason r);

struct TokenEvent {
  int32_t token = 0;
  int index = 0;            ///< 0 for the first generated token
  std::string text;         ///< text delta (complete UTF-8 characters only; may be empty)
  Clock::time_point time;   ///< when the engine produced it
  /// The raw logits [vocab] (before temperature/top-k) of the step that chose `token`, only while
  /// index < capture_logits_steps; empty otherwise. A view into the engine's buffer, valid only during
  /// on_token: copy what you keep.
  std::span<const float> logits;
};

struct FinishEvent {
  FinishReason reason = FinishReason::kLength;
  std::string message;      ///< why, for kError / kAborted
  int prompt_tokens = 0;
  int output_tokens = 0;
  int num_preemptions = 0;
  Clock::time_point time;
};

/// Receives one request's events, in order, on the engine thread. Keep it cheap: copy and return.
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  /// Each generated token, with its step's logits when they are captured. A throw ends the request (kError).
  virtual void on_token(const TokenEvent& ev) = 0;
  /// Exactly once, last.
  virtual void on_finish(const FinishEvent& ev) = 0;
};

// ---------------------------------------------------------------- errors at the edges

/// The model, tokenizer or config could not be loaded; what() names the file and what is wrong.
struct ModelLoadError : std::runtime_error { using std::runtime_error::runtime_error; };
/// The request cannot be served as given (e.g. prompt + max_new_tokens > max_model_len).
struct InvalidRequestError : std::invalid_argument { using std::invalid_argument::invalid_argument; };
/// The waiting queue is full (max_waiting).
struct QueueFullError : std::runtime_error { using std::runtime_error::runtime_error; };

// ---------------------------------------------------------------- the engine

struct EngineStats {
  int running = 0;
  int waiting = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t steps = 0;
  int64_t prompt_tokens_total = 0;
  int64_t generated_tokens_total = 0;
  int64_t preemptions_total = 0;
  double tokens_per_s = 0;   ///< generated tokens/s over the last few seconds
  // Prefix caching (all 0 when it is off), counted when a sequence is admitted, a readmission counting again
  // (vLLM's prefix_cache_queries / prefix_cache_hits):
  int64_t prefix_cache_queries = 0;        ///< tokens looked up: each admitted sequence's tokens so far
  int64_t prefix_cache_hits = 0;           ///< of those, found cached (their prefill skipped)
  int64_t prefix_cache_block_queries = 0;  ///< full blocks looked up (those before each sequence's last token)
  int64_t prefix_cache_block_hits = 0;     ///< of those, found cached
};

/// What the loaded model and the effective settings are (for reports and validation).
struct EngineInfo {
  std::string model;         ///< as given
  std::string backend;
  std::string dtype;
  std::string kv_cache_dtype;  ///< "auto" (the dtype's) or "fp8"
  int vocab_size = 0;
  int max_model_len = 0;
  int bos_id = 1;
  int eos_id = 2;
  int max_num_seqs = 0;
  int max_num_batched_tokens = 0;
  int block_size = 0;
  int64_t num_kv_blocks = 0;
  int64_t num_params = 0;
  std::string tokenizer;     ///< path, or "bytes"
  int tensor_parallel_size = 1;
};

class Engine {
 public:
  /// Loads the model and tokenizer and sizes the KV pool. Throws ModelLoadError.
  explicit Engine(const EngineConfig& config);
  ~Engine();  ///< aborts what is still in flight (each sink gets on_finish(kAborted)) and joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Queues a request; returns its id. Throws InvalidRequestError / QueueFullError (the sink is then not called).
  uint64_t submit(Request request, std::shared_ptr<RequestSink> sink);
  /// Ends a request early: its sink gets on_finish(kAborted) and its KV blocks are freed. Unknown ids are ignored.
  void abort(uint64_t id);

  EngineStats stats() const;
  const EngineInfo& info() const;

  /// Drops every cached prefix (vLLM's reset_prefix_cache), so no later prompt hits K/V an earlier one left:
  /// a rerun is not flattered by the last run's cache. Running requests keep their blocks. Returns the number
  /// of blocks the cache held (0 with prefix caching off). Thread-safe; with the background thread it waits
  /// for the engine thread to do it between two steps.
  int64_t reset_prefix_cache();

  std::vector<int32_t> tokenize(const std::string& text, bool add_bos) const;
  std::string detokenize(std::span<const int32_t> tokens) const;

  /// For background_thread = false: one scheduler step; returns false when there was nothing to do.
  bool step();
  /// Steps until no request is waiting or running (caller-stepped mode), or waits for that (background mode).
  void run_until_idle();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine
