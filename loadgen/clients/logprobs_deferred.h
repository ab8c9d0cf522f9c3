// --dump-logprobs on the client's thread: an OpenAI event's choices[0].logprobs (with K = 20 most of its
// bytes) is only located there — by its quotes and brackets, nothing checked — and handed on as text; the
// dump's writer thread reads it with the scanner of logprobs_scan.h (or the DOM where the scanner leaves it),
// so the thread that timestamps chunks does not pay for reading logprobs. Together the two give the event
// decode_api_event gives (tests/loadgen/clients/logprobs_scan_test.cc, on random and broken bodies).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/clients/http_api.h"
#include "loadgen/clients/token_logprobs.h"

namespace loadgen {

/// An OpenAI event's choices[0].logprobs left as text (a view of the event) for another thread to read.
struct LogprobsJson {
  bool present = false;
  LogprobsLayout layout = LogprobsLayout::kCompletion;
  std::string_view json;
};

/// decode_api_event_scanned(data) for the client's own thread under --dump-logprobs: an OpenAI event's
/// choices[0].logprobs (when not null) is passed over by its quotes and brackets alone and returned in
/// `deferred` instead of ev.logprobs; everything else is decoded and checked as before (TGI events
/// entirely: their logprobs stay in ev.logprobs). Where the event is not well-formed around that value the
/// DOM reads the whole event, as decode_api_event_scanned does (its logprobs then in ev.logprobs, or its error).
ApiEvent decode_api_event_deferring(std::string_view data, LogprobsJson& deferred);

/// The deferred value read: what decode_api_event_scanned would have put in ev.logprobs for the event,
/// or nullopt with `error` ("malformed logprobs: ...") when it is not JSON.
std::optional<std::vector<StepLogprobs>> read_logprobs_json(LogprobsLayout layout, std::string_view json,
                                                            std::string& error);

}  // namespace loadgen
