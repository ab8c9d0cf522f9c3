// check_tensor_parallel(): the shape rules (tp_plan.h) first, since they hold on any machine, then the
// backend, the build and the devices.
#include "parallel/tp_check.h"

#include <stdexcept>
#include <string>

#include "parallel/tp_plan.h"
#ifdef LLM_HAVE_CUDA
#include "backend/cuda/cuda_devices.h"
#endif

namespace engine {
namespace parallel {

void check_tp_settings(const EngineConfig& c, const ModelConfig& model, std::string_view option) {
  const int n = c.tensor_parallel_size;
  const std::string head = std::string(option) + " " + std::to_string(n) + ": ";
  if (n < 1) throw std::invalid_argument(head + "must be >= 1");
  if (n == 1) return;
  make_tp_plan(model, n, option);
  if (c.backend == BackendKind::kCpu)
    throw std::invalid_argument(head + "the cpu backend runs on one device; tensor parallelism needs the cuda "
                                       "backend (the CPU runs the shards only in the tests)");
#ifndef LLM_HAVE_CUDA
  throw std::invalid_argument(head + "this build has no CUDA backend: configure with --preset cuda");
#else
#ifndef LLM_HAVE_NCCL
  throw std::invalid_argument(head + "this build has no NCCL: configure --preset cuda where nccl.h and libnccl are "
                                     "found (the CUDA toolkit's, or libnccl-dev), with LLM_ENABLE_NCCL=ON");
#endif
  const int visible = cuda::visible_devices();
  if (visible < n)
    throw std::invalid_argument(head + "needs " + std::to_string(n) + " GPUs, " + std::to_string(visible) +
                                " visible (CUDA_VISIBLE_DEVICES)");
  throw std::invalid_argument(head + "the CUDA backend's tensor-parallel execution is not built yet: the sharding "
                                     "is done and tested on the CPU (docs/tensor-parallel.md)");
#endif
}

}  // namespace parallel

void check_tensor_parallel(const EngineConfig& config, std::string_view option) {
  if (config.tensor_parallel_size == 1) return;
  ModelConfig model;
  if (config.tensor_parallel_size > 1) model = load_model_config(config.model);
  parallel::check_tp_settings(config, model, option);
}

}  // namespace engine
