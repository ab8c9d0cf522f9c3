// The logprob fields of a streamed event read without a JSON DOM: with --top-logprobs 20 an OpenAI chunk's
// choices[0].logprobs is ~80 % of its bytes, and building nlohmann's tree of it (a map node and a string per
// alternative) was most of the client's cost. A scanner reads that one value straight into StepLogprobs
// (std::from_chars for numbers); the rest of the event, the small part, still goes through decode_api_event
// with that value replaced by null. The DOM parsers of http_logprobs.h stay the reference: the results are
// the same for every input (tests/loadgen/clients/logprobs_scan_test.cc compares them on fixtures and on
// random bodies), and whatever the scanner does not take — an event it does not recognise, JSON it would
// reject, a number from_chars will not give exactly as nlohmann does — goes to decode_api_event whole, so its
// errors are the DOM's.
//   OpenAI completions  choices[0].logprobs: legacy {tokens, token_logprobs, top_logprobs: [{text: lp}]} or
//                       llama.cpp's {content: [...]}
//   OpenAI chat         choices[0].logprobs.content [{token, logprob, id?, top_logprobs: [...]}]
//   TGI stream event    top_tokens [{id, text, logprob}] (the event's token itself is small: the DOM reads it)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/clients/http_api.h"
#include "loadgen/clients/token_logprobs.h"

namespace loadgen {

/// decode_api_event(data), the same ApiEvent, with the logprobs read by the scanner where it can.
ApiEvent decode_api_event_scanned(std::string_view data);

/// decode_api_event(data) with the value at [begin, end) read as null — the rest of an event whose logprobs
/// are read apart — or, where that is an error, decode_api_event(data) itself: the DOM's error for the whole
/// event.
ApiEvent decode_api_event_without(std::string_view data, size_t begin, size_t end);

/// The scanner on one JSON value (the text of choices[0].logprobs, or of TGI's top_tokens): what
/// parse_completion_logprobs / parse_chat_logprobs / the top_tokens list of parse_tgi_token_logprobs give for
/// json::parse(value), or nullopt when the scanner does not take it (not valid JSON as nlohmann reads it,
/// nesting deeper than 256, a number outside what from_chars converts).
std::optional<std::vector<StepLogprobs>> scan_completion_logprobs(std::string_view value);
std::optional<std::vector<StepLogprobs>> scan_chat_logprobs(std::string_view value);
std::optional<std::vector<TokenLogprob>> scan_tgi_top_tokens(std::string_view value);

}  // namespace loadgen
