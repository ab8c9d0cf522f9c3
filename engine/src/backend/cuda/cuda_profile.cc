// The CUDA backend's profiled pass (one eager step with events between the stages) and the hooks of
// cuda_backend.h that reach past the Backend interface.
#include "backend/cuda/cuda_profile.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"

namespace engine::cuda {

ProfileMarks::~ProfileMarks() {
  for (auto& [n, e] : ev_) cudaEventDestroy(e);
}

void ProfileMarks::mark(const char* name) {
  cudaEvent_t e;
  LLM_CUDA_CHECK(cudaEventCreate(&e));
  LLM_CUDA_CHECK(cudaEventRecord(e, s_));
  ev_.emplace_back(name, e);
}

std::vector<std::pair<std::string, double>> ProfileMarks::sums() const {
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 1; i < ev_.size(); ++i) {
    float ms = 0;
    LLM_CUDA_CHECK(cudaEventElapsedTime(&ms, ev_[i - 1].second, ev_[i].second));
    auto it = std::find_if(out.begin(), out.end(), [&](auto& p) { return p.first == ev_[i].first; });
    if (it == out.end()) out.emplace_back(ev_[i].first, ms);
    else it->second += ms;
  }
  return out;
}

std::vector<std::pair<std::string, double>> CudaBackend::profile(const StepBatch& batch) {
  if (!kv_) throw std::logic_error("cuda backend: profile before allocate_kv_cache");
  const Step st = stage_inputs(batch, batch.num_tokens());
  ProfileMarks mk(stream_);
  mk.mark("start");
  run_layers(st, &mk);
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return mk.sums();
}

}  // namespace engine::cuda

namespace engine {
namespace {
cuda::CudaBackend& as_cuda(Backend& backend, const char* hook) {
  auto* b = dynamic_cast<cuda::CudaBackend*>(&backend);
  if (!b) throw std::invalid_argument(std::string(hook) + ": not a cuda backend");
  return *b;
}
}  // namespace

std::vector<std::pair<std::string, double>> cuda_profile_forward(Backend& backend, const StepBatch& batch) {
  return as_cuda(backend, "cuda_profile_forward").profile(batch);
}

void cuda_fill_kv_cache(Backend& backend, float amp, uint64_t seed) {
  as_cuda(backend, "cuda_fill_kv_cache").fill_kv(amp, seed);
}

}  // namespace engine
