#include "loadgen/clients/sse_parser.h"

#include <cstring>

namespace loadgen {

namespace {

/// Offset of the first CR or LF in p[0, n), or n. Two memchr passes instead of a test per byte: servers end
/// lines in LF, so the CR search is over one line and almost always comes back empty.
size_t find_line_end(const char* p, size_t n) {
  const void* lf = std::memchr(p, '\n', n);
  const size_t limit = lf ? static_cast<size_t>(static_cast<const char*>(lf) - p) : n;
  const void* cr = limit ? std::memchr(p, '\r', limit) : nullptr;
  return cr ? static_cast<size_t>(static_cast<const char*>(cr) - p) : limit;
}

}  // namespace

bool SseParser::feed(std::string_view bytes, const EventFn& on_event) {
  if (overflow_) return false;
  const char* p = bytes.data();
  const size_t n = bytes.size();
  size_t start = 0;
  // The LF of a CRLF whose CR ended the previous read: not a new line.
  if (last_was_cr_ && n > 0) {
    last_was_cr_ = false;
    if (p[0] == '\n') start = 1;
  }
  while (start < n) {
    const size_t i = start + find_line_end(p + start, n - start);
    if (i == n) break;
    // Whole line = what was left over from earlier reads + bytes[start, i).
    if (line_.empty()) {
      process_line(bytes.substr(start, i - start), /*in_bytes=*/true, on_event);
    } else {
      line_.append(p + start, i - start);
      process_line(line_, /*in_bytes=*/false, on_event);
      line_.clear();
    }
    start = i + 1;
    if (p[i] == '\r') {
      if (i + 1 < n) {
        if (p[i + 1] == '\n') start = i + 2;  // CRLF inside this read
      } else {
        last_was_cr_ = true;  // the LF, if any, comes with the next read
      }
    }
    if (overflow_) return false;
  }
  if (start < n) line_.append(p + start, n - start);
  // A data line held as a view into `bytes` must not outlive this call: copy it (events that end in the read
  // that brought them, the common case, are never copied).
  own_pending();
  if (line_.size() + data_.size() > max_event_bytes_) {
    overflow_ = true;
    return false;
  }
  return true;
}

void SseParser::finish(const EventFn& on_event) {
  if (overflow_) return;
  if (!line_.empty()) {
    process_line(line_, /*in_bytes=*/false, on_event);
    line_.clear();
  }
  dispatch(on_event);
}

void SseParser::process_line(std::string_view line, bool in_bytes, const EventFn& on_event) {
  if (line.empty()) {
    dispatch(on_event);
    return;
  }
  if (line.front() == ':') return;  // comment / keep-alive
  std::string_view field = line, value;
  if (const void* colon = std::memchr(line.data(), ':', line.size())) {
    const size_t c = static_cast<size_t>(static_cast<const char*>(colon) - line.data());
    field = line.substr(0, c);
    value = line.substr(c + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (!have_data_ && in_bytes) {
      // The event's first data line, whole in this read: keep a view; dispatch hands it on uncopied.
      pending_ = value;
      pending_view_ = true;
    } else {
      own_pending();
      data_.append(value);
      data_.push_back('\n');
    }
    have_data_ = true;
    if (data_.size() + (pending_view_ ? pending_.size() : 0) > max_event_bytes_) overflow_ = true;
  } else if (field == "event") {
    type_.assign(value);
  }
  // id: and retry: matter for reconnecting EventSource clients, not for one POST response.
}

void SseParser::own_pending() {
  if (!pending_view_) return;
  data_.assign(pending_.data(), pending_.size());
  data_.push_back('\n');
  pending_view_ = false;
}

void SseParser::dispatch(const EventFn& on_event) {
  if (have_data_) {
    std::string_view data;
    if (pending_view_) {
      data = pending_;
    } else {
      data = data_;
      if (!data.empty() && data.back() == '\n') data.remove_suffix(1);
    }
    ++events_;
    on_event(type_, data);
  }
  data_.clear();
  type_.clear();
  have_data_ = false;
  pending_view_ = false;
}

}  // namespace loadgen
