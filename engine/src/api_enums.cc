// The names of engine.h's enums: to_string for logs and reports, parse for the settings' text forms.
#include "common/enum_names.h"
#include "engine/engine.h"

namespace engine {

namespace {

constexpr auto kFinishReasonNames = common::enum_names<FinishReason>(
    {{FinishReason::kLength, "length"}, {FinishReason::kEos, "eos"}, {FinishReason::kStop, "stop"},
     {FinishReason::kAborted, "aborted"}, {FinishReason::kError, "error"}});

constexpr auto kBackendNames =
    common::enum_names<BackendKind>({{BackendKind::kCpu, "cpu"}, {BackendKind::kCuda, "cuda"}});
constexpr auto kComputeDTypeNames = common::enum_names<ComputeDType>(
    {{ComputeDType::kAuto, "auto"}, {ComputeDType::kF32, "f32"}, {ComputeDType::kBf16, "bf16"}});
constexpr auto kKvCacheDTypeNames =
    common::enum_names<KvCacheDType>({{KvCacheDType::kAuto, "auto"}, {KvCacheDType::kFp8, "fp8"}});

}  // namespace

const char* to_string(FinishReason r) { return kFinishReasonNames.name(r); }
const char* to_string(BackendKind b) { return kBackendNames.name(b); }
const char* to_string(ComputeDType d) { return kComputeDTypeNames.name(d); }
const char* to_string(KvCacheDType d) { return kKvCacheDTypeNames.name(d); }
KvCacheDType parse_kv_cache_dtype(std::string_view text, std::string_view what) {
  return kKvCacheDTypeNames.parse(text, what);
}
BackendKind parse_backend_kind(std::string_view text, std::string_view what) { return kBackendNames.parse(text, what); }
ComputeDType parse_compute_dtype(std::string_view text, std::string_view what) {
  return kComputeDTypeNames.parse(text, what);
}

}  // namespace engine
