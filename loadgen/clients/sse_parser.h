// Incremental Server-Sent Events parser (the WHATWG "text/event-stream" rules) for streamed LLM responses:
// bytes arrive in arbitrary pieces from the socket, an event may be split across any number of reads, lines
// end in LF, CRLF or CR (a CR at the end of one read and the LF at the start of the next are one line end),
// lines starting with ':' are comments (keep-alives), and a blank line dispatches the event.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace loadgen {

class SseParser {
 public:
  /// One dispatched event: `type` is the "event:" field (empty when absent), `data` the "data:" lines
  /// joined with '\n' (the OpenAI/TGI JSON, or "[DONE]").
  using EventFn = std::function<void(std::string_view type, std::string_view data)>;

  /// `max_event_bytes` bounds a single event (a broken server cannot make us buffer without limit).
  explicit SseParser(size_t max_event_bytes = 16u << 20) : max_event_bytes_(max_event_bytes) {}

  /// Feeds the next bytes of the stream; calls `on_event` for every event completed by them.
  /// Returns false (and ignores the rest) once an event or line grew past max_event_bytes.
  bool feed(std::string_view bytes, const EventFn& on_event);

  /// End of stream: an event whose closing blank line never came is still dispatched (servers that end
  /// the body right after the last "data:" line would otherwise lose their final event).
  void finish(const EventFn& on_event);

  /// Events dispatched so far (comments and empty events not counted).
  size_t events() const { return events_; }
  bool overflowed() const { return overflow_; }

 private:
  void process_line(std::string_view line, bool in_bytes, const EventFn& on_event);
  void dispatch(const EventFn& on_event);
  void own_pending();  ///< the view of pending_ copied into data_ (as a first data line), if there is one

  size_t max_event_bytes_;
  std::string line_;        ///< the current, unfinished line
  std::string data_;        ///< data lines of the current event, each followed by '\n'
  std::string_view pending_;  ///< the event's only data line so far, still inside the bytes being fed
  bool pending_view_ = false;
  std::string type_;        ///< event: field of the current event
  bool have_data_ = false;  ///< a data: field was seen (an event with "data:" and nothing else is "")
  bool last_was_cr_ = false;
  bool overflow_ = false;
  size_t events_ = 0;
};

}  // namespace loadgen
