#include "loadgen/run/logprobs_spool.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace loadgen {

namespace {

struct Header {
  uint64_t prev;
  uint32_t value;  ///< kJson: the text's bytes (they follow); kRead: the caller's step number
  uint8_t kind, layout;
  uint16_t unused;
};
static_assert(sizeof(Header) == 16);

constexpr size_t kFileBuffer = size_t{1} << 20;

/// "--dump-logprobs: spool file <path>: <what>[: <errno's text>]".
[[noreturn]] void fail(const std::string& path, const std::string& what, int err = 0) {
  throw std::runtime_error("--dump-logprobs: spool file " + path + ": " + what +
                           (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
}

}  // namespace

LogprobsSpool::LogprobsSpool(std::string path, size_t memory_bytes) : path_(std::move(path)) {
  if (memory_bytes > 0) {
    void* m = mmap(nullptr, memory_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("--dump-logprobs: cannot map " + std::to_string(memory_bytes) +
                                                  " bytes for the spool: " + std::strerror(errno));
    memory_ = static_cast<char*>(m);
    memory_bytes_ = memory_bytes;
    madvise(memory_, memory_bytes_, MADV_HUGEPAGE);  // fewer faults below, where the kernel allows it
    const size_t page = static_cast<size_t>(std::max(4096L, sysconf(_SC_PAGESIZE)));
    volatile char* touch = memory_;
    for (size_t at = 0; at < memory_bytes_; at += page) touch[at] = 0;  // faulted in now, before the run
  }
}

LogprobsSpool::~LogprobsSpool() {
  if (memory_) munmap(memory_, memory_bytes_);
  if (fd_.load() >= 0) {
    ::close(fd_.load());
    ::unlink(path_.c_str());
  }
}

uint64_t LogprobsSpool::append_json(uint64_t prev, LogprobsLayout layout, std::string_view json) {
  const size_t n = std::min<size_t>(json.size(), UINT32_MAX);  // an event of 4 GiB is not a real one
  return append(prev, Event::kJson, layout, static_cast<uint32_t>(n), json.substr(0, n));
}

uint64_t LogprobsSpool::append_read(uint64_t prev, uint32_t n) {
  return append(prev, Event::kRead, LogprobsLayout::kCompletion, n, {});
}

uint64_t LogprobsSpool::append(uint64_t prev, Event::Kind kind, LogprobsLayout layout, uint32_t value,
                               std::string_view json) {
  const Header h{prev, value, kind, static_cast<uint8_t>(layout), 0};
  const uint64_t pos = end_.fetch_add(sizeof h + json.size(), std::memory_order_relaxed);
  write_at(pos, &h, sizeof h);  // within memory (the common case): a copy, no lock
  write_at(pos + sizeof h, json.data(), json.size());
  return pos;
}

size_t LogprobsSpool::in_memory(uint64_t pos, size_t n) const {
  return pos < memory_bytes_ ? std::min<size_t>(n, memory_bytes_ - pos) : 0;
}

void LogprobsSpool::write_at(uint64_t pos, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  const size_t m = in_memory(pos, n);
  if (m > 0) std::memcpy(memory_ + pos, p, m);
  if (m == n) return;
  p += m;
  pos += m;
  n -= m;
  std::lock_guard lk(file_mu_);
  if (buffer_.empty()) {
    buffer_.resize(kFileBuffer);
    window_ = pos;
  }
  while (n > 0) {
    if (pos < window_) {  // another thread's bytes, reserved before the window moved past them
      pwrite_locked(pos, p, n);
      return;
    }
    if (pos >= window_ + buffer_.size()) {
      flush_locked();
      window_ = pos;
    }
    const size_t at = pos - window_, m = std::min(n, buffer_.size() - at);
    std::memcpy(buffer_.data() + at, p, m);
    filled_ = std::max(filled_, at + m);
    p += m;
    pos += m;
    n -= m;
  }
}

void LogprobsSpool::flush_locked() {
  if (filled_ > 0) pwrite_locked(window_, buffer_.data(), filled_);
  filled_ = 0;
}

void LogprobsSpool::pwrite_locked(uint64_t pos, const char* p, size_t n) {
  if (write_errno_.load(std::memory_order_relaxed) != 0) return;
  int fd = fd_.load();
  if (fd < 0) {
    fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      write_errno_.store(errno);
      return;
    }
    fd_.store(fd);
  }
  for (off_t at = static_cast<off_t>(pos - memory_bytes_); n > 0;) {
    const ssize_t w = ::pwrite(fd, p, n, at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      write_errno_.store(w < 0 ? errno : EIO);
      return;
    }
    p += w;
    at += w;
    n -= static_cast<size_t>(w);
  }
}

void LogprobsSpool::read_at(uint64_t pos, void* data, size_t n) const {
  char* p = static_cast<char*>(data);
  if (pos + n > end_.load()) fail(path_, "a chain runs past the end (at byte " + std::to_string(pos) + ")");
  const size_t m = in_memory(pos, n);
  if (m > 0) std::memcpy(p, memory_ + pos, m);
  p += m;
  pos += m;
  n -= m;
  for (off_t at = static_cast<off_t>(pos - memory_bytes_); n > 0;) {
    const ssize_t r = ::pread(fd_.load(), p, n, at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) fail(path_, "cannot read it back", r < 0 ? errno : EIO);
    p += r;
    at += r;
    n -= static_cast<size_t>(r);
  }
}

void LogprobsSpool::chain(uint64_t last, std::vector<Event>& events, std::string& json) {
  {
    std::lock_guard lk(file_mu_);
    flush_locked();
  }
  if (const int err = write_errno_.load(); err != 0) fail(path_, "cannot write to it", err);
  events.clear();
  std::vector<std::pair<uint64_t, Header>> back;  // last event first
  for (uint64_t pos = last; pos != kNone;) {
    Header h{};
    read_at(pos, &h, sizeof h);
    if (h.prev != kNone && h.prev >= pos) fail(path_, "a chain goes forward (at byte " + std::to_string(pos) + ")");
    back.emplace_back(pos, h);
    pos = h.prev;
  }
  size_t bytes = 0;
  for (const auto& [pos, h] : back) bytes += h.kind == Event::kJson ? h.value : 0;
  json.resize(bytes);
  size_t at = 0;
  for (auto it = back.rbegin(); it != back.rend(); ++it) {
    const auto& [pos, h] = *it;
    Event e;
    e.kind = static_cast<Event::Kind>(h.kind);
    e.layout = static_cast<LogprobsLayout>(h.layout);
    if (e.kind == Event::kRead) {
      e.begin = h.value;
    } else {
      read_at(pos + sizeof h, json.data() + at, h.value);
      e.begin = static_cast<uint32_t>(at);
      at += h.value;
      e.end = static_cast<uint32_t>(at);
    }
    events.push_back(e);
  }
}

}  // namespace loadgen
