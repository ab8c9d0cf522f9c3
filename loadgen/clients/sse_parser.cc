#include "loadgen/clients/sse_parser.h"

namespace loadgen {

bool SseParser::feed(std::string_view bytes, const EventFn& on_event) {
  if (overflow_) return false;
  size_t start = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c != '\n' && c != '\r') continue;
    if (c == '\n' && last_was_cr_ && i == start && line_.empty()) {
      // The LF of a CRLF whose CR ended the previous read (or the previous line): not a new line.
      last_was_cr_ = false;
      start = i + 1;
      continue;
    }
    // Whole line = what was left over from earlier reads + bytes[start, i).
    if (line_.empty()) {
      process_line(bytes.substr(start, i - start), on_event);
    } else {
      line_.append(bytes.substr(start, i - start));
      process_line(line_, on_event);
      line_.clear();
    }
    last_was_cr_ = (c == '\r');
    start = i + 1;
    if (last_was_cr_ && i + 1 < bytes.size() && bytes[i + 1] == '\n') {
      ++i;  // CRLF inside this read
      start = i + 1;
      last_was_cr_ = false;
    }
    if (overflow_) return false;
  }
  if (start < bytes.size()) {
    last_was_cr_ = false;
    line_.append(bytes.substr(start));
    if (line_.size() + data_.size() > max_event_bytes_) {
      overflow_ = true;
      return false;
    }
  }
  return true;
}

void SseParser::finish(const EventFn& on_event) {
  if (overflow_) return;
  if (!line_.empty()) {
    process_line(line_, on_event);
    line_.clear();
  }
  dispatch(on_event);
}

void SseParser::process_line(std::string_view line, const EventFn& on_event) {
  if (line.empty()) {
    dispatch(on_event);
    return;
  }
  if (line.front() == ':') return;  // comment / keep-alive
  std::string_view field = line, value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
    have_data_ = true;
    if (data_.size() > max_event_bytes_) overflow_ = true;
  } else if (field == "event") {
    type_.assign(value);
  }
  // id: and retry: matter for reconnecting EventSource clients, not for one POST response.
}

void SseParser::dispatch(const EventFn& on_event) {
  if (have_data_) {
    std::string_view data = data_;
    if (!data.empty() && data.back() == '\n') data.remove_suffix(1);
    ++events_;
    on_event(type_, data);
  }
  data_.clear();
  type_.clear();
  have_data_ = false;
}

}  // namespace loadgen
