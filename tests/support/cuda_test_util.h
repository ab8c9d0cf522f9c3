// Helpers of the CUDA tests: device buffers, bf16 conversion, random data of either storage type (bf16 or
// float), relative error and its bounds, the fp8 KV cache's row quantization.
#pragma once

#ifdef LLM_HAVE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

namespace cuda_test {

using bf16 = __nv_bfloat16;

inline bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_DEVICE() \
  do { if (!cuda_test::have_device()) GTEST_SKIP() << "no CUDA device"; } while (0)

#define CK(call) ASSERT_EQ((call), cudaSuccess) << #call

/// A device copy of a host vector; download() reads it back.
template <typename T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) {
    if (cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * sizeof(T)) != cudaSuccess) p = nullptr;
  }
  explicit DevBuf(const std::vector<T>& h) : DevBuf(h.size()) { upload(h); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  void upload(const std::vector<T>& h) { cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice); }
  std::vector<T> download() const {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
  /// Fills every byte with 0xff: NaN in bf16 and f32, so an element the kernel skips shows up.
  void poison() { cudaMemset(p, 0xff, n * sizeof(T)); }
};

inline float f(bf16 x) { return __bfloat162float(x); }
inline float f(float x) { return x; }
inline bf16 b(float x) { return __float2bfloat16(x); }

/// A GEMM's or GEMV's y read back as floats from whichever of the two buffers the output type used.
inline std::vector<float> y_as_floats(bool f32, const DevBuf<float>& yf, const DevBuf<bf16>& yb) {
  if (f32) return yf.download();
  std::vector<float> y;
  for (const bf16 v : yb.download()) y.push_back(f(v));
  return y;
}

inline std::vector<bf16> rand_bf16(size_t n, std::mt19937_64& rng, float amp = 1.f) {
  std::uniform_real_distribution<float> d(-amp, amp);
  std::vector<bf16> v(n);
  for (auto& x : v) x = b(d(rng));
  return v;
}
inline std::vector<float> rand_f32(size_t n, std::mt19937_64& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

/// n random values of the storage type E (bf16 or float), uniform in (-amp, amp).
template <typename E>
std::vector<E> rand_vals(size_t n, std::mt19937_64& rng, float amp = 1.f) {
  if constexpr (std::is_same_v<E, float>) return rand_f32(n, rng, -amp, amp);
  else return rand_bf16(n, rng, amp);
}

template <typename E>
const char* type_name() {
  return std::is_same_v<E, float> ? "f32" : "bf16";
}

/// A relative-error bound for an output stored as E: `bf16_bound` for bf16 outputs (one rounding to 8
/// mantissa bits, ~2e-3, dominates), `f32_bound` for float outputs (only f32 arithmetic and fast-math
/// intrinsics against float64: ~1e-6 seen on such sizes, so a missed term or wrong index shows far above).
template <typename E>
double bound(double bf16_bound, double f32_bound = 1e-5) {
  return std::is_same_v<E, float> ? f32_bound : bf16_bound;
}

/// y[M, N] = x[M, K] @ w[N, K]^T in float64 from bf16 inputs: the GEMM and GEMV kernels' reference.
inline std::vector<double> gemm_f64(const std::vector<bf16>& x, const std::vector<bf16>& w, int M, int N, int K) {
  std::vector<double> y(size_t(M) * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += double(f(x[size_t(m) * K + k])) * f(w[size_t(n) * K + k]);
      y[size_t(m) * N + n] = acc;
    }
  return y;
}

/// ||out - ref|| / ||ref||; infinite when out has a NaN/inf or sizes differ.
template <typename T>
double rel_err(const std::vector<T>& out, const std::vector<double>& ref) {
  if (out.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double o = static_cast<double>(static_cast<float>(out[i]));
    if (!std::isfinite(o)) return INFINITY;
    num += (o - ref[i]) * (o - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

/// One row of fp8 e4m3 as the backend's fp8 KV write stores it: scale = max|x| / 448, bytes = e4m3(x / scale);
/// dequant = the values a reader sees (e4m3 * scale), in float64.
inline float quantize_row_fp8(const float* x, int n, uint8_t* bytes, double* dequant) {
  float amax = 0.f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = amax > 0.f ? amax / 448.f : 1.f;
  for (int i = 0; i < n; ++i) {
    bytes[i] = __nv_cvt_float_to_fp8(x[i] / scale, __NV_SATFINITE, __NV_E4M3);
    const __half_raw h = __nv_cvt_fp8_to_halfraw(bytes[i], __NV_E4M3);
    dequant[i] = double(__half2float(__half(h))) * scale;
  }
  return scale;
}

}  // namespace cuda_test
#endif  // LLM_HAVE_CUDA
