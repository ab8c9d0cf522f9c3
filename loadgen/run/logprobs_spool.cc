#include "loadgen/run/logprobs_spool.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <type_traits>

namespace loadgen {

namespace {

struct RecordHeader {
  uint64_t index;
  uint32_t spans;
  uint32_t bytes;
};
static_assert(std::is_trivially_copyable_v<RecordHeader> && std::is_trivially_copyable_v<LogprobsSpool::Span>);

constexpr size_t kBufferBytes = size_t{1} << 20;

/// "--dump-logprobs: spool file <path>: <what>[: <errno's text>]".
[[noreturn]] void fail(const std::string& path, const std::string& what, bool with_errno = true) {
  throw std::runtime_error("--dump-logprobs: spool file " + path + ": " + what +
                           (with_errno ? std::string(": ") + std::strerror(errno) : std::string()));
}

}  // namespace

LogprobsSpool::LogprobsSpool(std::string path) : path_(std::move(path)), buffer_(kBufferBytes) {
  f_ = std::fopen(path_.c_str(), "w+b");
  if (!f_) fail(path_, "cannot create it");
  std::setvbuf(f_, buffer_.data(), _IOFBF, buffer_.size());
}

LogprobsSpool::~LogprobsSpool() {
  if (f_) std::fclose(f_);
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void LogprobsSpool::append(uint64_t index, const std::vector<Span>& spans, std::string_view json) {
  if (json.size() > UINT32_MAX) fail(path_, "request " + std::to_string(index) + "'s logprobs are over 4 GiB", false);
  const RecordHeader h{index, static_cast<uint32_t>(spans.size()), static_cast<uint32_t>(json.size())};
  if (std::fwrite(&h, sizeof h, 1, f_) != 1 ||
      (!spans.empty() && std::fwrite(spans.data(), sizeof(Span), spans.size(), f_) != spans.size()) ||
      (!json.empty() && std::fwrite(json.data(), 1, json.size(), f_) != json.size()))
    fail(path_, "cannot write to it");
  ++records_;
}

void LogprobsSpool::for_each(const std::function<void(uint64_t, const std::vector<Span>&, std::string_view)>& fn) {
  if (std::fflush(f_) != 0) fail(path_, "cannot write to it");
  const long end = std::ftell(f_);
  if (end < 0 || std::fseek(f_, 0, SEEK_SET) != 0) fail(path_, "cannot rewind it");
  std::vector<Span> spans;
  std::string json;
  for (int64_t r = 0; r < records_; ++r) {
    RecordHeader h{};
    if (std::fread(&h, sizeof h, 1, f_) != 1) fail(path_, "record " + std::to_string(r) + " is cut short", false);
    spans.resize(h.spans);
    json.resize(h.bytes);
    if ((h.spans > 0 && std::fread(spans.data(), sizeof(Span), h.spans, f_) != h.spans) ||
        (h.bytes > 0 && std::fread(json.data(), 1, h.bytes, f_) != h.bytes))
      fail(path_, "record " + std::to_string(r) + " is cut short", false);
    fn(h.index, spans, json);
  }
  // Appends after this one go to the end again.
  if (std::fseek(f_, end, SEEK_SET) != 0) fail(path_, "cannot seek in it");
}

}  // namespace loadgen
