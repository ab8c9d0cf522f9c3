// Engine::Impl, shared by the two files that define it: engine_load.cc (the constructor: model, tokenizer,
// backend, KV pool, scheduler) and engine.cc (intake, the step, the engine thread). Not for use outside
// engine/src/.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "engine/engine.h"
#include "model_runner.h"
#include "scheduler/scheduler.h"
#include "stats/stats_recorder.h"
#include "tokenizer/tokenizer.h"

namespace engine {

struct Engine::Impl {
  /// What one step took in from submit() and abort().
  struct Intake {
    size_t num_sequences = 0;
    int64_t prompt_tokens = 0;
  };

  EngineConfig config;
  EngineInfo info;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<ModelRunner> runner;

  // shared with submit/abort/stats callers, under mu
  mutable std::mutex mu;
  std::condition_variable work_cv;  ///< the engine thread sleeps here when idle
  std::condition_variable idle_cv;  ///< run_until_idle waits here
  std::vector<std::unique_ptr<Sequence>> incoming;
  std::vector<uint64_t> aborts;
  bool stopping = false;
  bool busy = false;  ///< the engine thread holds unfinished sequences
  // reset_prefix_cache() callers: asked > done means the engine thread owes a reset.
  uint64_t resets_asked = 0, resets_done = 0;
  int64_t last_reset_dropped = 0;
  std::condition_variable reset_cv;
  uint64_t next_id = 1;
  std::unique_ptr<StatsRecorder> stats;
  std::thread thread;

  explicit Impl(const EngineConfig& c);
  uint64_t submit(Request r, std::shared_ptr<RequestSink> sink);
  bool step_once();
  Intake take_in();
  std::optional<std::span<const int32_t>> run(const ScheduledBatch& batch);
  int64_t deliver(std::vector<StepOutput>& outputs);
  void fail(const ScheduledBatch& batch, const std::string& message);
  bool send_finishes();
  void end_all(FinishReason reason, const std::string& message);
  void end_step(bool ran_batch, int64_t prompt_tokens, int64_t generated_tokens);
  void loop();
  void shutdown();
};

}  // namespace engine
