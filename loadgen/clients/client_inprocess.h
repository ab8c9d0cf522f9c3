// The in-process client: loadgen's Client over engine::Engine (same API the HTTP server drives), so the
// numbers measure the engine without HTTP. Each request gets a small sink that forwards the engine's events.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "engine/engine.h"
#include "loadgen/clients/client.h"

namespace loadgen {

class InProcessClient : public Client {
 public:
  /// Builds and owns the engine (throws engine::ModelLoadError naming the file, std::invalid_argument
  /// naming the loadgen flag of a setting the engine refused).
  explicit InProcessClient(const engine::EngineConfig& config);
  ~InProcessClient() override;

  void start(ClientCallbacks* callbacks) override;
  /// Submits to the engine. InvalidRequestError / QueueFullError end the request as kRejected (with the
  /// engine's message); anything else the engine throws as kFailed. Never throws.
  void send(const WorkItem& item) override;
  bool wait_all(std::chrono::milliseconds timeout) override;
  std::string describe() const override;

  engine::Engine& engine() { return *engine_; }
  const engine::EngineConfig& config() const { return config_; }

 private:
  class Sink;
  void finished();  ///< a sink's request is over

  engine::EngineConfig config_;
  std::unique_ptr<engine::Engine> engine_;
  ClientCallbacks* callbacks_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t in_flight_ = 0;
};

}  // namespace loadgen
