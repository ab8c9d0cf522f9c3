// How a request (or a sweep cell) ended. The one name table for it: requests.csv, requests.jsonl, sweep.json and
// every reader compare this enum, never the text.
#pragma once

#include <optional>
#include <string_view>

#include "common/enum_names.h"

namespace results {

enum class Status {
  kOk,        ///< completed (a request: every token arrived; a sweep cell: its run measured something)
  kRejected,  ///< the system under test refused it (HTTP 4xx/503, engine queue full or invalid request)
  kFailed,    ///< anything else: transport error, timeout, never sent, cut off by the end of the run
};

inline constexpr auto kStatusNames =
    common::enum_names<Status>({{Status::kOk, "ok"}, {Status::kRejected, "rejected"}, {Status::kFailed, "failed"}});

inline const char* to_string(Status s) { return kStatusNames.name(s); }
inline std::optional<Status> parse_status(std::string_view text) { return kStatusNames.find(text); }

}  // namespace results
