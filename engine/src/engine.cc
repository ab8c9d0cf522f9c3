// Engine and Engine::Impl: request intake and the engine step: take in new sequences and aborts ->
// Scheduler::schedule() -> ModelRunner::run() (the chosen tokens) -> Scheduler::postprocess() (text and
// finishes) -> sink events -> stats. Loading is engine_load.cc. Threading: submit/abort/stats take `mu`;
// everything else runs on the engine thread (or the caller's, with background_thread = false).
#include "engine/engine.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "backend/backend.h"
#include "common/thread_name.h"
#include "engine_impl.h"
#include "model_runner.h"
#include "request_validation.h"
#include "scheduler/scheduler.h"
#include "stats/stats_recorder.h"
#include "tokenizer/tokenizer.h"

namespace engine {

namespace {

// The one on_finish of a sequence (a throwing sink is reported, never propagated).
void send_finish(const Sequence& seq) {
  FinishEvent ev;
  ev.reason = seq.finish_reason;
  ev.message = seq.finish_message;
  ev.prompt_tokens = seq.num_prompt_tokens();
  ev.output_tokens = seq.num_output_tokens();
  ev.num_preemptions = seq.num_preemptions;
  ev.time = Clock::now();
  try {
    seq.sink->on_finish(ev);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine: on_finish of request %llu threw: %s\n", static_cast<unsigned long long>(seq.id), e.what());
  }
}

}  // namespace

uint64_t Engine::Impl::submit(Request r, std::shared_ptr<RequestSink> sink) {
  const std::string who = request_name(r);
  if (!sink) throw InvalidRequestError(who + ": no sink");
  std::vector<int32_t> prompt = r.prompt_tokens.empty() ? tokenizer->encode(r.prompt, r.add_bos) : std::move(r.prompt_tokens);
  validate_request(r, prompt, info);

  auto seq = std::make_unique<Sequence>();
  seq->prompt_tokens = std::move(prompt);
  seq->forced_tokens = std::move(r.forced_tokens);
  seq->sampling = std::move(r.sampling);
  seq->capture_logits_steps = r.capture_logits_steps;
  seq->tag = std::move(r.tag);
  seq->sink = std::move(sink);
  seq->decoder = std::make_unique<StreamDecoder>(*tokenizer);
  seq->stop_matcher = StopMatcher(seq->sampling.stop);
  seq->rng.seed(seq->sampling.seed);
  seq->arrival_time = Clock::now();

  std::lock_guard<std::mutex> lk(mu);
  if (stopping) throw QueueFullError("engine is shutting down");
  const int waiting = stats->last().waiting + static_cast<int>(incoming.size());
  if (config.max_waiting > 0 && waiting >= config.max_waiting)
    throw QueueFullError(who + ": " + std::to_string(waiting) + " requests are waiting (max_waiting " +
                         std::to_string(config.max_waiting) + ")");
  const uint64_t id = next_id++;
  seq->id = id;
  seq->arrival = id;
  incoming.push_back(std::move(seq));
  work_cv.notify_one();
  return id;
}

// One engine step: take in new sequences and aborts -> schedule -> run -> postprocess -> deliver events
// -> stats. Returns whether there was anything to do.
bool Engine::Impl::step_once() {
  const Intake intake = take_in();
  const ScheduledBatch batch = scheduler->schedule();
  int64_t generated = 0;
  if (!batch.empty()) {
    if (const std::optional<std::span<const int32_t>> tokens = run(batch)) {
      try {
        std::vector<StepOutput> outputs = scheduler->postprocess(batch, *tokens);
        generated = deliver(outputs);
      } catch (const std::exception& e) {  // past the forward pass: a bug; end what the step touched
        fail(batch, std::string("engine step failed: ") + e.what());
      }
    }
  }
  const bool finished_any = send_finishes();
  end_step(!batch.empty(), intake.prompt_tokens, generated);
  return !batch.empty() || finished_any || intake.num_sequences > 0;
}

// Moves what submit() and abort() queued into the scheduler.
Engine::Impl::Intake Engine::Impl::take_in() {
  std::vector<std::unique_ptr<Sequence>> fresh;
  std::vector<uint64_t> to_abort;
  uint64_t resets = 0;
  {
    std::lock_guard<std::mutex> lk(mu);
    fresh.swap(incoming);
    to_abort.swap(aborts);
    if (!fresh.empty()) busy = true;
    if (resets_asked > resets_done) resets = resets_asked;
  }
  if (resets > 0) {  // before the new sequences are admitted: they must not hit what the reset drops
    const int64_t dropped = scheduler->reset_prefix_cache();
    std::lock_guard<std::mutex> lk(mu);
    resets_done = resets;
    last_reset_dropped = dropped;
    reset_cv.notify_all();
  }
  Intake intake;
  intake.num_sequences = fresh.size();
  for (auto& seq : fresh) {
    intake.prompt_tokens += seq->num_prompt_tokens();
    try {
      scheduler->add(std::move(seq));  // submit() checked what add() checks: this should not throw
    } catch (const std::exception& e) {  // add() refused it: `seq` still owns it
      seq->finish_reason = FinishReason::kError;
      seq->finish_message = e.what();
      send_finish(*seq);
    }
  }
  for (uint64_t id : to_abort)
    if (Sequence* s = scheduler->find(id)) scheduler->finish(s, FinishReason::kAborted, "aborted by the caller");
  return intake;
}

// The chosen token of each scheduled sequence, or nothing when the backend failed (the batch's sequences
// then end with the backend's error).
std::optional<std::span<const int32_t>> Engine::Impl::run(const ScheduledBatch& batch) {
  try {
    return runner->run(batch);
  } catch (const std::exception& e) {
    fail(batch, std::string("backend ") + backend->name() + " failed: " + e.what());
    return std::nullopt;
  }
}

// One on_token per output, with the step's logits row when that step is captured; returns how many were
// sent. A sink that throws ends its own request.
int64_t Engine::Impl::deliver(std::vector<StepOutput>& outputs) {
  const Clock::time_point now = Clock::now();
  for (StepOutput& out : outputs) {
    Sequence& s = *out.seq;
    TokenEvent ev;
    ev.token = out.token;
    ev.index = out.index;
    ev.text = std::move(out.text);
    ev.time = now;
    if (out.index < s.capture_logits_steps) ev.logits = runner->logits(out.batch_index);
    try {
      s.sink->on_token(ev);
    } catch (const std::exception& e) {
      if (!s.is_finished()) scheduler->finish(&s, FinishReason::kError, std::string("on_token threw: ") + e.what());
    }
  }
  return static_cast<int64_t>(outputs.size());
}

// Ends the batch's sequences that are still unfinished with kError.
void Engine::Impl::fail(const ScheduledBatch& batch, const std::string& message) {
  for (const ScheduledSeq& entry : batch.seqs)
    if (!entry.seq->is_finished()) scheduler->finish(entry.seq, FinishReason::kError, message);
}

// Sends on_finish to each sequence that finished since the last call; returns whether there was one.
bool Engine::Impl::send_finishes() {
  std::vector<std::unique_ptr<Sequence>> done = scheduler->take_finished();
  for (auto& seq : done) send_finish(*seq);
  return !done.empty();
}

// Ends every unfinished sequence and sends its on_finish.
void Engine::Impl::end_all(FinishReason reason, const std::string& message) {
  for (Sequence* s : scheduler->unfinished()) scheduler->finish(s, reason, message);
  send_finishes();
}

// Records the step in the stats and wakes run_until_idle() once nothing is left.
void Engine::Impl::end_step(bool ran_batch, int64_t prompt_tokens, int64_t generated_tokens) {
  StepRecord step;
  step.ran_batch = ran_batch;
  step.prompt_tokens = prompt_tokens;
  step.generated_tokens = generated_tokens;
  step.running = scheduler->num_running();
  step.waiting = scheduler->num_waiting();
  step.kv_blocks_used = scheduler->block_manager().num_used_blocks();
  step.preemptions_total = scheduler->num_preemptions();
  step.prefix_cache = scheduler->prefix_cache_counters();
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lk(mu);
  stats->record(step, now);
  busy = scheduler->has_unfinished();
  if (!busy && incoming.empty()) idle_cv.notify_all();
}

void Engine::Impl::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu);
      work_cv.wait(lk, [&] {
        return stopping || !incoming.empty() || !aborts.empty() || busy || resets_asked > resets_done;
      });
      if (stopping) return;
    }
    try {
      step_once();
    } catch (const std::exception& e) {
      // Nothing may escape the engine thread: end every request rather than hang their callers.
      std::fprintf(stderr, "engine: step failed: %s\n", e.what());
      try {
        end_all(FinishReason::kError, e.what());
        end_step(false, 0, 0);
      } catch (const std::exception& again) {
        std::fprintf(stderr, "engine: ending the requests after that failure failed too: %s\n", again.what());
      }
    }
  }
}

void Engine::Impl::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu);
    stopping = true;
  }
  work_cv.notify_all();
  reset_cv.notify_all();
  if (thread.joinable()) thread.join();
  std::vector<std::unique_ptr<Sequence>> fresh;
  {
    std::lock_guard<std::mutex> lk(mu);
    fresh.swap(incoming);
    aborts.clear();
  }
  end_all(FinishReason::kAborted, "engine shut down");
  for (auto& seq : fresh) {  // submitted but never taken in by a step
    seq->finish_reason = FinishReason::kAborted;
    seq->finish_message = "engine shut down";
    send_finish(*seq);
  }
  std::lock_guard<std::mutex> lk(mu);
  idle_cv.notify_all();
}

// ---------------------------------------------------------------- Engine

Engine::Engine(const EngineConfig& config) : impl_(std::make_unique<Impl>(config)) {
  if (config.background_thread)
    impl_->thread = std::thread([this] {
      common::name_this_thread("engine-step");
      impl_->loop();
    });
}

Engine::~Engine() { impl_->shutdown(); }

uint64_t Engine::submit(Request request, std::shared_ptr<RequestSink> sink) {
  return impl_->submit(std::move(request), std::move(sink));
}

void Engine::abort(uint64_t id) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  impl_->aborts.push_back(id);
  impl_->work_cv.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  EngineStats s = impl_->stats->snapshot(Clock::now());
  s.waiting += static_cast<int>(impl_->incoming.size());
  return s;
}

const EngineInfo& Engine::info() const { return impl_->info; }

int64_t Engine::reset_prefix_cache() {
  Impl& m = *impl_;
  if (!m.config.background_thread) return m.scheduler->reset_prefix_cache();  // the caller steps: its thread
  std::unique_lock<std::mutex> lk(m.mu);
  const uint64_t mine = ++m.resets_asked;
  m.work_cv.notify_one();
  m.reset_cv.wait(lk, [&] { return m.stopping || m.resets_done >= mine; });
  return m.stopping && m.resets_done < mine ? 0 : m.last_reset_dropped;
}

std::vector<int32_t> Engine::tokenize(const std::string& text, bool add_bos) const {
  return impl_->tokenizer->encode(text, add_bos);
}

std::string Engine::detokenize(std::span<const int32_t> tokens) const { return impl_->tokenizer->decode(tokens); }

bool Engine::step() {
  if (impl_->config.background_thread)
    throw std::logic_error("Engine::step: the engine steps on its own thread (background_thread = true)");
  return impl_->step_once();
}

void Engine::run_until_idle() {
  if (impl_->config.background_thread) {
    std::unique_lock<std::mutex> lk(impl_->mu);
    impl_->idle_cv.wait(lk, [&] { return impl_->stopping || (impl_->incoming.empty() && !impl_->busy); });
    return;
  }
  for (;;) {
    bool did = impl_->step_once();
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (impl_->incoming.empty() && !impl_->busy && impl_->aborts.empty()) return;
    if (!did) throw std::logic_error("Engine::run_until_idle: requests are queued but none can be scheduled");
  }
}

}  // namespace engine
