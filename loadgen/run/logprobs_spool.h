// Where --dump-logprobs keeps the servers' logprobs JSON during a run: each event's choices[0].logprobs text
// as sent, appended by the client's thread, chained to the same request's previous event, and read back in
// LogprobsDump::close() after the run's last request. The reading (JSON to rows, token strings to ids) and
// the HDF5 writes cost ~20 µs a request at K = 20, and on two cores a writer thread doing them took that from
// the client and the server; even writing the text to a file took 4 % of the requests/s (the kernel's page
// cache). So the spool is first memory, allocated and faulted in when the dump is made, before the run
// starts: an append is a copy into it. Past that memory (the dump sizes it from the run: 2 GiB at most) the
// rest goes to "<path>.spool.tmp" beside the dump through a 1 MiB buffer, and the file is removed with the
// spool.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/clients/token_logprobs.h"

namespace loadgen {

class LogprobsSpool {
 public:
  static constexpr uint64_t kNone = ~uint64_t{0};  ///< the `prev` of a request's first event

  /// One event as read back: json[begin, end) in `layout`, or (kRead) a step the caller keeps itself, its
  /// number in `begin`.
  struct Event {
    enum Kind : uint8_t { kJson, kRead } kind = kJson;
    LogprobsLayout layout = LogprobsLayout::kCompletion;
    uint32_t begin = 0, end = 0;
  };

  /// `memory_bytes` of memory, faulted in now; the file is made only if an append goes past them.
  LogprobsSpool(std::string path, size_t memory_bytes);
  ~LogprobsSpool();
  LogprobsSpool(const LogprobsSpool&) = delete;
  LogprobsSpool& operator=(const LogprobsSpool&) = delete;

  /// Appends an event after `prev` (its request's last, or kNone) and returns where it lies: the next
  /// event's `prev`. Safe from several threads at once. A failed write (the file cannot be made, a full
  /// disk) is kept and thrown by chain(), not here: this runs inside the client's callbacks.
  uint64_t append_json(uint64_t prev, LogprobsLayout layout, std::string_view json);
  /// A marker: the caller's own step number `n` comes here, between the events around it.
  uint64_t append_read(uint64_t prev, uint32_t n);

  /// After the last append: the chain ending at `last`, first event first, into `events` and `json` (both
  /// replaced). Throws std::runtime_error naming the file where a write had failed or a read fails.
  void chain(uint64_t last, std::vector<Event>& events, std::string& json);

  bool spilled() const { return end_.load() > memory_bytes_; }  ///< whether appends went past memory

 private:
  uint64_t append(uint64_t prev, Event::Kind kind, LogprobsLayout layout, uint32_t value, std::string_view json);
  /// Of n bytes at pos, how many lie in memory (the rest follow in the file).
  size_t in_memory(uint64_t pos, size_t n) const;
  /// In memory, and past it into the file's buffer (under file_mu_), the buffer written out when a write goes past it.
  void write_at(uint64_t pos, const void* data, size_t n);
  void flush_locked();
  void pwrite_locked(uint64_t pos, const char* data, size_t n);
  void read_at(uint64_t pos, void* data, size_t n) const;

  std::string path_;
  char* memory_ = nullptr;
  size_t memory_bytes_ = 0;
  std::atomic<uint64_t> end_{0};  ///< bytes appended: [0, memory_bytes_) in memory, the rest in the file
  std::mutex file_mu_;
  std::atomic<int> fd_{-1};
  std::atomic<int> write_errno_{0};
  std::vector<char> buffer_;  ///< the file's bytes [window_, window_ + buffer_.size()), up to filled_
  uint64_t window_ = 0;
  size_t filled_ = 0;
};

}  // namespace loadgen
