// SerialClient: a real loadgen::Client with one worker thread that serves one request at a time: it waits
// `service`, then emits `tokens` one-token chunks and the done. With service 0 it answers at once, so every
// cost a run measures is loadgen's own (bench/loadgen_overhead_bench.cc); with service > 0 it is an engine
// of batch size 1 (tests/recorder_test.cc).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "loadgen/clients/client.h"

namespace testing_support {

class SerialClient : public loadgen::Client {
 public:
  SerialClient(std::chrono::microseconds service, int tokens) : service_(service), tokens_(tokens) {
    thread_ = std::thread([this] { loop(); });
  }
  ~SerialClient() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void start(loadgen::ClientCallbacks* cb) override { cb_ = cb; }
  void send(const loadgen::WorkItem& item) override {
    cb_->on_sent(item.index, loadgen::Clock::now());
    std::lock_guard lk(mu_);
    queue_.push_back(item.index);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, active_.fetch_add(1) + 1);
    cv_.notify_one();
  }
  bool wait_all(std::chrono::milliseconds timeout) override {
    std::unique_lock lk(mu_);
    return idle_cv_.wait_for(lk, timeout, [&] { return in_flight_ == 0; });
  }
  std::string describe() const override { return "serial"; }
  /// The most requests sent and not yet over at any moment.
  int64_t max_in_flight() {
    std::lock_guard lk(mu_);
    return max_in_flight_;
  }

 private:
  void loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      const uint64_t index = queue_.front();
      queue_.pop_front();
      lk.unlock();
      std::this_thread::sleep_for(service_);  // returns at once for 0
      static constexpr std::string_view kLetters = "abcdefghijklmnopqrstuvwxyz";
      for (int k = 0; k < tokens_; ++k) cb_->on_chunk(index, 1, kLetters.substr(size_t(k % 26), 1), loadgen::Clock::now());
      loadgen::Outcome o;
      o.output_tokens = tokens_;
      active_.fetch_sub(1);  // over before its done is delivered: a dispatcher woken by on_done may send at once
      cb_->on_done(index, o, loadgen::Clock::now());
      lk.lock();
      if (--in_flight_ == 0) idle_cv_.notify_all();
    }
  }
  std::chrono::microseconds service_;
  int tokens_;
  loadgen::ClientCallbacks* cb_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;  // work for the thread; nothing in flight
  std::deque<uint64_t> queue_;
  int64_t in_flight_ = 0, max_in_flight_ = 0;  // sent and not yet done; the most sent and not yet over
  std::atomic<int64_t> active_{0};              // sent and not yet over
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace testing_support
