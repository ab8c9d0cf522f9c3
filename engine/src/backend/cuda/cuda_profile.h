// Profiling of the CUDA backend's forward pass: device events between its stages. The pass takes a
// ProfileMarks* (null: no events); cuda_profile.cc also holds the hooks of cuda_backend.h that benchmarks
// and tests reach the backend by (cuda_profile_forward, cuda_fill_kv_cache).
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <utility>
#include <vector>

namespace engine::cuda {

/// One event after each named stage, recorded on one stream; a stage's time runs from the mark before it.
class ProfileMarks {
 public:
  explicit ProfileMarks(cudaStream_t s) : s_(s) {}
  ~ProfileMarks();
  ProfileMarks(const ProfileMarks&) = delete;
  ProfileMarks& operator=(const ProfileMarks&) = delete;

  void mark(const char* name);
  /// Milliseconds per name, summed over its marks, in order of first appearance; the first mark only starts
  /// the clock. Call once the stream has reached the last mark.
  std::vector<std::pair<std::string, double>> sums() const;

 private:
  cudaStream_t s_;
  std::vector<std::pair<std::string, cudaEvent_t>> ev_;
};

}  // namespace engine::cuda
