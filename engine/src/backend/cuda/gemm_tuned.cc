// TunedGemm (gemm_tuned.h).
#include "backend/cuda/gemm_tuned.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "engine/engine.h"

namespace engine::cuda {
namespace {

constexpr int kOffers = 8;  // the heuristic's first offers tried per bucket
constexpr size_t kMaxWorkspace = 64u << 20;

void lt_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLASLt error in ") + what + ": " + cublasGetStatusString(st));
}

std::string shape_name(int M, int N, int K) {
  return "[" + std::to_string(M) + " x " + std::to_string(K) + "] @ [" + std::to_string(N) + " x " + std::to_string(K) + "]^T";
}

int config(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoConfigAttributes_t attr) {
  int v = 0;
  size_t written = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&a, attr, &v, sizeof v, &written);
  return v;
}

/// The layouts of x (B: K x M, bf16) and y (C = D: N x M) at M rows: the same for the check and the run.
void make_row_layouts(int M, int N, int K, bool y_f32, cublasLtMatrixLayout_t& b, cublasLtMatrixLayout_t& c) {
  lt_check(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, K, M, K), "layout B");
  lt_check(cublasLtMatrixLayoutCreate(&c, y_f32 ? CUDA_R_32F : CUDA_R_16BF, N, M, N), "layout C");
}

/// "a66/t10/o1/s1": algorithm id, tile id, custom option, split-K count.
std::string algo_name(const cublasLtMatmulAlgo_t& a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "a%d/t%d/o%d/s%d", config(a, CUBLASLT_ALGO_CONFIG_ID),
                config(a, CUBLASLT_ALGO_CONFIG_TILE_ID), config(a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION),
                std::max(1, config(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM)));
  return buf;
}

/// Device buffers for choosing at up to `rows` rows: random x, the candidate's y and ordered_gemm's y.
struct Scratch {
  void* x = nullptr;
  void* y = nullptr;
  void* ref = nullptr;
  Scratch(int rows, int N, int K, bool y_f32, bool with_ref) {
    const size_t xb = size_t(rows) * K * 2, yb = size_t(rows) * N * (y_f32 ? 4 : 2);
    if (cudaMalloc(&x, xb) != cudaSuccess || cudaMalloc(&y, yb) != cudaSuccess ||
        (with_ref && cudaMalloc(&ref, yb) != cudaSuccess)) {
      cudaGetLastError();  // the failed allocation's error, so that it does not surface in a later check
      release();
      throw engine::ModelLoadError("GEMM: no room on the device for the " +
                                   std::to_string((xb + (with_ref ? 2 : 1) * yb) >> 20) +
                                   " MiB it needs to choose the algorithms of " + shape_name(rows, N, K) +
                                   " (a smaller max_num_batched_tokens needs less)");
    }
  }
  ~Scratch() { release(); }
  void release() {
    cudaFree(x);
    cudaFree(y);
    cudaFree(ref);
    x = y = ref = nullptr;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

}  // namespace

int TunedGemm::bucket_of(int M) {
  int b = 0;
  while ((1 << b) < M) ++b;
  return b;
}

// Grown only while choosing (outside capture). The old buffer is kept until destruction, not freed: a graph
// captured before a later bucket was chosen (one the backend did not prepare at load) still points at it.
void TunedGemm::reserve_workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return;
  void* grown = nullptr;
  LLM_CUDA_CHECK(cudaMalloc(&grown, bytes));
  if (workspace_) retired_.push_back(workspace_);
  workspace_ = grown;
  workspace_bytes_ = bytes;
}

TunedGemm::TunedGemm(cudaStream_t stream, Policy policy, bool verbose)
    : stream_(stream), policy_(policy), verbose_(verbose) {
  lt_check(cublasLtCreate(&lt_), "cublasLtCreate");
  LLM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&count_), sizeof *count_));
}

TunedGemm::~TunedGemm() {
  for (auto& [k, r] : rows_) {
    cublasLtMatrixLayoutDestroy(r.b);
    cublasLtMatrixLayoutDestroy(r.c);
  }
  for (auto& [k, s] : shapes_) {
    cublasLtMatrixLayoutDestroy(s.a);
    cublasLtMatmulDescDestroy(s.op);
  }
  if (count_) cudaFree(count_);
  if (workspace_) cudaFree(workspace_);
  for (void* p : retired_) cudaFree(p);
  if (lt_) cublasLtDestroy(lt_);
}

// Row-major y[M,N] = x[M,K] @ w[N,K]^T is, column-major, y^T[N,M] = op(w)[N,K] @ x^T[K,M] with op = T: A = w
// (K x N, transposed), B = x (K x M), C = D = y (N x M).
TunedGemm::Shape& TunedGemm::shape(int N, int K, bool y_f32) {
  const ShapeKey key{N, K, y_f32};
  if (auto it = shapes_.find(key); it != shapes_.end()) return it->second;
  Shape s;
  lt_check(cublasLtMatmulDescCreate(&s.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  lt_check(cublasLtMatmulDescSetAttribute(s.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "TRANSA");
  lt_check(cublasLtMatmulDescSetAttribute(s.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "TRANSB");
  lt_check(cublasLtMatrixLayoutCreate(&s.a, CUDA_R_16BF, K, N, K), "layout A");
  return shapes_.emplace(key, s).first->second;
}

TunedGemm::Rows& TunedGemm::rows(const Shape& s, int M, int N, int K, bool y_f32) {
  const auto key = std::make_tuple(M, N, K, y_f32);
  if (auto it = rows_.find(key); it != rows_.end()) return it->second;
  Rows r;
  make_row_layouts(M, N, K, y_f32, r.b, r.c);
  // The bucket's algorithm was chosen at the bucket's top row count; that it takes this M is checked here,
  // once (host only, so also while a graph is captured). Where it does not: kOrdered runs ordered_gemm,
  // kFastest the heuristic's first offer for this M that fits the workspace.
  const Choice& c = s.buckets[size_t(bucket_of(M))];
  cublasLtMatmulHeuristicResult_t check{};
  if (!c.reference && cublasLtMatmulAlgoCheck(lt_, s.op, s.a, r.b, r.c, r.c, &c.algo, &check) == CUBLAS_STATUS_SUCCESS &&
      check.workspaceSize <= workspace_bytes_) {
    r.algo_ok = true;
    r.algo = c.algo;
  } else if (policy_ == Policy::kFastest) {
    for (const cublasLtMatmulAlgo_t& a : offers(s, r.b, r.c))
      if (cublasLtMatmulAlgoCheck(lt_, s.op, s.a, r.b, r.c, r.c, &a, &check) == CUBLAS_STATUS_SUCCESS &&
          check.workspaceSize <= workspace_bytes_) {
        r.algo_ok = true;
        r.algo = a;
        break;
      }
    if (!r.algo_ok) throw std::runtime_error("GEMM: cuBLASLt has no algorithm for " + shape_name(M, N, K));
  }
  return rows_.emplace(key, r).first->second;
}

// The heuristic's first offers without workspace, then with up to kMaxWorkspace (at small M, with room, it
// offers mostly algorithms that split K; at large M, without, none: there they ask for 4 bytes).
std::vector<cublasLtMatmulAlgo_t> TunedGemm::offers(const Shape& s, cublasLtMatrixLayout_t lb,
                                                    cublasLtMatrixLayout_t lc) const {
  std::vector<cublasLtMatmulAlgo_t> out;
  for (const uint64_t ws : {uint64_t{0}, uint64_t{kMaxWorkspace}}) {
    cublasLtMatmulPreference_t pref;
    lt_check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    const uint32_t align = 16;  // the backend's buffers are
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof align);
    cublasLtMatmulHeuristicResult_t got[kOffers];
    int n = 0;
    if (cublasLtMatmulAlgoGetHeuristic(lt_, s.op, s.a, lb, lc, lc, pref, kOffers, got, &n) != CUBLAS_STATUS_SUCCESS)
      n = 0;
    cublasLtMatmulPreferenceDestroy(pref);
    for (int i = 0; i < n; ++i)
      if (std::none_of(out.begin(), out.end(),
                       [&](const cublasLtMatmulAlgo_t& o) { return std::memcmp(&o, &got[i].algo, sizeof o) == 0; }))
        out.push_back(got[i].algo);
  }
  return out;
}

void TunedGemm::choose(Shape& s, int b, const std::vector<const void*>& weights, int N, int K, bool y_f32,
                       int rows) {
  const bool ordered = policy_ == Policy::kOrdered;
  Scratch sc(rows, N, K, y_f32, ordered);
  const size_t y_u16 = size_t(rows) * N * (y_f32 ? 2 : 1);
  fill_random_bf16(static_cast<bf16*>(sc.x), size_t(rows) * K, 0x5eed0000u + uint64_t(N) * 131 + K, 1.f, stream_);
  const void* w0 = weights.front();
  if (ordered)
    ordered_gemm(static_cast<const bf16*>(sc.x), static_cast<const bf16*>(w0), sc.ref, y_f32, rows, N, K, stream_);

  cublasLtMatrixLayout_t lb, lc;
  make_row_layouts(rows, N, K, y_f32, lb, lc);
  const std::vector<cublasLtMatmulAlgo_t> offered = offers(s, lb, lc);
  const int found = int(offered.size());

  const float alpha = 1.f, beta = 0.f;
  auto launch = [&](const cublasLtMatmulAlgo_t& algo, const void* w) {
    return cublasLtMatmul(lt_, s.op, &alpha, w, s.a, sc.x, lb, &beta, sc.y, lc, sc.y, lc, &algo, workspace_,
                          workspace_bytes_, stream_) == CUBLAS_STATUS_SUCCESS;
  };
  // Which offers may run: they run here (kOrdered: and give ordered_gemm's bits).
  std::vector<int> eligible;
  int split = 0, refused = 0, differs = 0;
  for (int i = 0; i < found; ++i) {
    const cublasLtMatmulAlgo_t& algo = offered[size_t(i)];
    if (ordered && config(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM) > 1) {
      ++split;
      continue;
    }
    cublasLtMatmulHeuristicResult_t check{};
    if (cublasLtMatmulAlgoCheck(lt_, s.op, s.a, lb, lc, lc, &algo, &check) != CUBLAS_STATUS_SUCCESS) {
      ++refused;
      continue;
    }
    reserve_workspace(check.workspaceSize);
    if (!launch(algo, w0)) {
      ++refused;
      continue;
    }
    if (ordered) {
      count_unequal_u16(sc.y, sc.ref, y_u16, count_, stream_);
      unsigned long long differ = 0;
      LLM_CUDA_CHECK(cudaMemcpyAsync(&differ, count_, sizeof differ, cudaMemcpyDeviceToHost, stream_));
      LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
      if (verbose_)
        std::fprintf(stderr, "ordered GEMM %s: offer %d (%s, workspace %zu): %llu of %zu differ\n",
                     shape_name(rows, N, K).c_str(), i, algo_name(algo).c_str(), check.workspaceSize, differ, y_u16);
      if (differ != 0) {  // sums in another order: not for this policy
        ++differs;
        continue;
      }
    }
    eligible.push_back(i);
  }
  // Timed in kRounds rounds over all of them, each offer's best round kept: one pass in offer order let the
  // clock's ramp or a neighbour's moment decide (the same binary picked O's 12.6 us tile in one process and a
  // slower one in the next, the mode's batch-1 step 4.24 vs 4.39 ms; docs/cuda-notes.md, v15).
  constexpr int kRounds = 3;
  const int reps = std::clamp(int(weights.size()), 3, 8);
  std::vector<float> best_of(eligible.size(), 0.f);
  cudaEvent_t e0, e1;
  LLM_CUDA_CHECK(cudaEventCreate(&e0));
  LLM_CUDA_CHECK(cudaEventCreate(&e1));
  for (int round = 0; round < kRounds; ++round)
    for (size_t j = 0; j < eligible.size(); ++j) {
      const cublasLtMatmulAlgo_t& algo = offered[size_t(eligible[j])];
      LLM_CUDA_CHECK(cudaEventRecord(e0, stream_));
      for (int r = 0; r < reps; ++r) launch(algo, weights[size_t(r) % weights.size()]);
      LLM_CUDA_CHECK(cudaEventRecord(e1, stream_));
      LLM_CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0.f;
      LLM_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      if (round == 0 || ms < best_of[j]) best_of[j] = ms;
    }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  Choice best;
  float best_ms = 0.f;
  for (size_t j = 0; j < eligible.size(); ++j) {
    const cublasLtMatmulAlgo_t& algo = offered[size_t(eligible[j])];
    if (verbose_)
      std::fprintf(stderr, "GEMM %s: offer %d (%s): %.1f us\n", shape_name(rows, N, K).c_str(), eligible[j],
                   algo_name(algo).c_str(), 1e3f * best_of[j] / float(reps));
    if (!best.chosen || best_of[j] < best_ms) {
      best.chosen = true;
      best.algo = algo;
      best_ms = best_of[j];
    }
  }
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  if (!best.chosen && !ordered)
    throw std::runtime_error("GEMM: cuBLASLt offers no algorithm that runs " + shape_name(rows, N, K));
  if (!best.chosen) {
    best.chosen = true;
    best.reference = true;
    if (!warned_) {
      std::fprintf(stderr,
                   "ordered GEMM: no cuBLASLt algorithm computes ordered_gemm's sums for %s (of %d offers, "
                   "%d split K, %d refused, %d summed otherwise); that shape runs ordered_gemm itself, far slower "
                   "(further shapes are not reported)\n",
                   shape_name(rows, N, K).c_str(), found, split, refused, differs);
      warned_ = true;
    }
  }
  s.buckets[size_t(b)] = best;
}

void TunedGemm::prepare(const std::vector<const void*>& weights, int N, int K, bool y_f32, int max_rows) {
  if (weights.empty() || max_rows <= 0) return;
  Shape& s = shape(N, K, y_f32);
  const int top = bucket_of(max_rows);
  if (int(s.buckets.size()) <= top) s.buckets.resize(size_t(top) + 1);
  for (int b = 0; b <= top; ++b)
    if (!s.buckets[size_t(b)].chosen) choose(s, b, weights, N, K, y_f32, std::min(1 << b, max_rows));
}

void TunedGemm::run(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K) {
  if (M == 0) return;  // a step whose chunks sample no token asks lm_head for no rows
  Shape& s = shape(N, K, y_f32);
  const int b = bucket_of(M);
  if (int(s.buckets.size()) <= b) s.buckets.resize(size_t(b) + 1);
  if (!s.buckets[size_t(b)].chosen) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    LLM_CUDA_CHECK(cudaStreamIsCapturing(stream_, &cs));
    if (cs != cudaStreamCaptureStatusNone)
      throw std::logic_error("GEMM: " + shape_name(M, N, K) +
                             " was not prepared before graph capture (TunedGemm::prepare)");
    choose(s, b, {w}, N, K, y_f32, 1 << b);
  }
  const Rows& r = rows(s, M, N, K, y_f32);
  if (!r.algo_ok) {
    ordered_gemm(static_cast<const bf16*>(x), static_cast<const bf16*>(w), y, y_f32, M, N, K, stream_);
    return;
  }
  const float alpha = 1.f, beta = 0.f;
  lt_check(cublasLtMatmul(lt_, s.op, &alpha, w, s.a, x, r.b, &beta, y, r.c, y, r.c, &r.algo, workspace_,
                          workspace_bytes_, stream_),
           "cublasLtMatmul");
}

std::string TunedGemm::describe() const {
  std::string out;
  for (const auto& [key, s] : shapes_) {
    const auto [N, K, f32] = key;
    char head[64];
    std::snprintf(head, sizeof head, "%d x %d %s:", N, K, f32 ? "f32" : "bf16");
    out += head;
    for (size_t b = 0; b < s.buckets.size(); ++b) {
      const Choice& c = s.buckets[b];
      if (!c.chosen) continue;
      out += " <=" + std::to_string(1 << int(b)) + " ";
      out += c.reference ? std::string("ordered_gemm") : algo_name(c.algo);
    }
    out += "\n";
  }
  return out;
}

}  // namespace engine::cuda
