// Names of the client contract's enums (loadgen/client.h), as they appear in requests.csv and summary.json.
#include "loadgen/client.h"

namespace loadgen {

const char* to_string(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kRejected: return "rejected";
    case Status::kFailed: return "failed";
  }
  return "unknown";
}

const char* to_string(TokenCountSource s) {
  switch (s) {
    case TokenCountSource::kEngine: return "engine";
    case TokenCountSource::kUsage: return "usage";
    case TokenCountSource::kRetokenized: return "retokenized";
    case TokenCountSource::kChunks: return "chunks";
  }
  return "unknown";
}

}  // namespace loadgen
