// gemm_sums_probe: which GEMM implementations compute the same sums, and how fast each is at each M: the
// program behind docs/cuda-notes.md v15 (the deterministic mode's GEMMs, gemm_tuned.h).
//
// y[M, N] = x[M, K] w[N, K]^T, bf16 in, f32 out, for the Llama-2-7B shapes (wo, wd, qkv, gu, lm; argv[1] picks
// some by name) at M = 1 .. 2,012. Row r of x is the same at every M (the first M rows of one matrix), so a
// row's bits can be compared across M and across implementations. Candidates: three plain tensor-core kernels
// that sum k in order, 16 products per mma.sync.m16n8k16, one f32 accumulator (seq: x as A; seq_swap: the two
// halves of each 16-k step swapped between fragment registers; seq_wA: the weights as A, x as B); the
// engine's skinny_gemm, gemv_mma and gemv_units; every algorithm cuBLASLt's heuristic offers at any of the M
// (with and without workspace); copies of the first twelve forced to split K into 2, 4 or 8. Each cell is
// "us[=] gN": microseconds per GEMM over rotating weight copies (not L2-resident), '=' when all M rows equal
// seq's bit for bit, gN the group of implementations whose row 0 has the same bits.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1);} } while (0)
using bf16 = __nv_bfloat16;

// Natural-order sequential mma: one warp per (16-row m-tile, 8-col n-tile), k in steps of 16.
// mode 0: natural fragments; mode 1: halves of each k16 swapped (same sets, other positions);
// mode 2: w as A (16 weight rows), x as B (8 tokens).
__device__ inline uint32_t ld2(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }
template <int MODE>
__global__ void seq_kernel(const bf16* x, const bf16* w, float* y, int M, int N, int K) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (MODE < 2) {
    const int ntiles = N / 8, mt = warp / ntiles, nt = warp % ntiles;
    if (mt * 16 >= M) return;
    const int r0 = mt * 16 + g, r1 = r0 + 8, c = nt * 8 + g;
    float d[4] = {0, 0, 0, 0};
    for (int k0 = 0; k0 < K; k0 += 16) {
      const int ka = MODE == 0 ? k0 + 2 * t : k0 + 2 * t + 8, kb = MODE == 0 ? k0 + 2 * t + 8 : k0 + 2 * t;
      uint32_t a0 = r0 < M ? ld2(x + size_t(r0) * K + ka) : 0, a1 = r1 < M ? ld2(x + size_t(r1) * K + ka) : 0;
      uint32_t a2 = r0 < M ? ld2(x + size_t(r0) * K + kb) : 0, a3 = r1 < M ? ld2(x + size_t(r1) * K + kb) : 0;
      uint32_t b0 = ld2(w + size_t(c) * K + ka), b1 = ld2(w + size_t(c) * K + kb);
      asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    }
    const int oc = nt * 8 + 2 * t;
    if (r0 < M) { y[size_t(r0) * N + oc] = d[0]; y[size_t(r0) * N + oc + 1] = d[1]; }
    if (r1 < M) { y[size_t(r1) * N + oc] = d[2]; y[size_t(r1) * N + oc + 1] = d[3]; }
  } else {
    const int mtiles = (M + 7) / 8, ntl = warp / mtiles, mt = warp % mtiles;
    if (ntl * 16 >= N) return;
    const int n0 = ntl * 16 + g, n1 = n0 + 8, tok = mt * 8 + g;
    float d[4] = {0, 0, 0, 0};
    for (int k0 = 0; k0 < K; k0 += 16) {
      const int ka = k0 + 2 * t, kb = k0 + 2 * t + 8;
      uint32_t a0 = ld2(w + size_t(n0) * K + ka), a1 = ld2(w + size_t(n1) * K + ka);
      uint32_t a2 = ld2(w + size_t(n0) * K + kb), a3 = ld2(w + size_t(n1) * K + kb);
      uint32_t b0 = tok < M ? ld2(x + size_t(tok) * K + ka) : 0, b1 = tok < M ? ld2(x + size_t(tok) * K + kb) : 0;
      asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    }
    // D: rows = weight rows n0 (d0,d1 at tokens 2t, 2t+1), n1 (d2, d3)
    const int t0 = mt * 8 + 2 * t;
    if (t0 < M) { y[size_t(t0) * N + n0] = d[0]; y[size_t(t0) * N + n1] = d[2]; }
    if (t0 + 1 < M) { y[size_t(t0 + 1) * N + n0] = d[1]; y[size_t(t0 + 1) * N + n1] = d[3]; }
  }
}

__global__ void fill(bf16* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; z ^= z >> 31;
    p[i] = __float2bfloat16((float((z >> 40) & 0xFFFFFF) / 16777216.f - 0.5f) * 0.2f);
  }
}

void lt(cublasStatus_t s, const char* w) { if (s != CUBLAS_STATUS_SUCCESS) { fprintf(stderr, "%s: %s\n", w, cublasGetStatusString(s)); exit(1);} }

std::string desc(const cublasLtMatmulAlgo_t& a) {
  int id = 0, tile = 0, split = 0, red = 0, swz = 0, cust = 0, stages = 0, cl = 0; size_t sz;
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &sz);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &sz);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof split, &sz);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &sz);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swz, sizeof swz, &sz);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &cust, sizeof cust, &sz);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &sz);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cl, sizeof cl, &sz);
  uint64_t impl = 0;
  cublasLtMatmulAlgoCapGetAttribute(&a, CUBLASLT_ALGO_CAP_NUMERICAL_IMPL_FLAGS, &impl, sizeof impl, &sz);
  char b[160];
  snprintf(b, sizeof b, "a%d t%d st%d sk%d r%d sw%d o%d cl%d f%llx", id, tile, stages, split, red, swz, cust, cl, (unsigned long long)impl);
  return b;
}

struct Cand { std::string name; bool lt = false; cublasLtMatmulAlgo_t algo{}; int kind = 0; };

int main(int argc, char** argv) {
  const std::vector<int> Ms = {1, 2, 8, 16, 32, 64, 128, 256, 512, 2012};
  struct Sh { const char* name; int N, K; };
  std::vector<Sh> shapes = {{"wo", 4096, 4096}, {"wd", 4096, 11008}, {"qkv", 12288, 4096}, {"gu", 22016, 4096}, {"lm", 32000, 4096}};
  if (argc > 1) { std::vector<Sh> s; for (auto& x : shapes) if (strstr(argv[1], x.name)) s.push_back(x); shapes = s; }
  const int Mmax = 2012;
  cublasLtHandle_t h; lt(cublasLtCreate(&h), "create");
  cudaStream_t st; CK(cudaStreamCreate(&st));
  const size_t wsMax = 512u << 20; void* ws; CK(cudaMalloc(&ws, wsMax));
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  for (auto& sh : shapes) {
    const int N = sh.N, K = sh.K;
    const size_t wbytes = size_t(N) * K * 2;
    const int copies = std::max<int>(2, int((400u << 20) / wbytes) + 1);
    std::vector<bf16*> W(copies);
    for (int i = 0; i < copies; ++i) { CK(cudaMalloc(&W[i], wbytes)); fill<<<1024, 256>>>(W[i], size_t(N) * K, 7); }  // same values
    bf16* x; CK(cudaMalloc(&x, size_t(Mmax) * K * 2)); fill<<<1024, 256>>>(x, size_t(Mmax) * K, 99);
    float *y, *ref; CK(cudaMalloc(&y, size_t(Mmax) * N * 4)); CK(cudaMalloc(&ref, size_t(Mmax) * N * 4));
    seq_kernel<0><<<(Mmax + 15) / 16 * (N / 8) / 4, 128>>>(x, W[0], ref, Mmax, N, K);
    CK(cudaDeviceSynchronize());
    std::vector<float> href(size_t(Mmax) * N), hy(size_t(Mmax) * N);
    CK(cudaMemcpy(href.data(), ref, href.size() * 4, cudaMemcpyDeviceToHost));
    // cuBLASLt descriptors: column-major y^T[N,M] = w^T... (A = w, K x N, op T), B = x (K x M), C = y (N x M) f32.
    cublasLtMatmulDesc_t op; lt(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    cublasLtMatrixLayout_t la; cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, K, N, K);
    std::map<int, std::pair<cublasLtMatrixLayout_t, cublasLtMatrixLayout_t>> lay;
    for (int M : Ms) { cublasLtMatrixLayout_t b, c; cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, K, M, K); cublasLtMatrixLayoutCreate(&c, CUDA_R_32F, N, M, N); lay[M] = {b, c}; }
    std::vector<Cand> cands;
    cands.push_back({"seq", false, {}, 0}); cands.push_back({"seq_swap", false, {}, 1}); cands.push_back({"seq_wA", false, {}, 2});
    cands.push_back({"skinny", false, {}, 3}); cands.push_back({"gemv_mma", false, {}, 4}); cands.push_back({"gemv_units", false, {}, 5});
    auto add = [&](const cublasLtMatmulAlgo_t& a) {
      for (auto& c : cands) if (c.lt && !memcmp(&c.algo, &a, sizeof a)) return;
      cands.push_back({desc(a), true, a, 9});
    };
    for (int M : Ms) for (uint64_t wsz : {uint64_t(0), uint64_t(wsMax)}) {
      cublasLtMatmulPreference_t p; cublasLtMatmulPreferenceCreate(&p);
      cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof wsz);
      cublasLtMatmulHeuristicResult_t r[64]; int n = 0;
      if (cublasLtMatmulAlgoGetHeuristic(h, op, la, lay[M].first, lay[M].second, lay[M].second, p, 64, r, &n) == CUBLAS_STATUS_SUCCESS)
        for (int i = 0; i < n; ++i) add(r[i].algo);
      cublasLtMatmulPreferenceDestroy(p);
    }
    // Forced split-K copies of the first few no-split algorithms.
    const size_t nbase = cands.size();
    for (size_t i = 6; i < nbase && i < 6 + 12; ++i) {
      int split = 0; size_t sz; cublasLtMatmulAlgoConfigGetAttribute(&cands[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof split, &sz);
      if (split > 1) continue;
      for (int s : {2, 4, 8}) {
        cublasLtMatmulAlgo_t a = cands[i].algo;
        uint32_t red = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
        cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &s, sizeof s);
        cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red);
        add(a);
      }
    }
    printf("=== %s N=%d K=%d: %zu candidates, %d weight copies\n", sh.name, N, K, cands.size(), copies);
    const int iters = 20;
    // per candidate, per M: time_us, all rows == seq ref, row0 hash
    std::map<uint64_t, int> groups;
    for (auto& c : cands) {
      std::string line;
      char buf[128];
      for (int M : Ms) {
        auto run = [&](int it) -> bool {
          const bf16* w = W[it % copies];
          switch (c.kind) {
            case 0: seq_kernel<0><<<(M + 15) / 16 * (N / 8) / 4 + 1, 128, 0, st>>>(x, w, y, M, N, K); return true;
            case 1: seq_kernel<1><<<(M + 15) / 16 * (N / 8) / 4 + 1, 128, 0, st>>>(x, w, y, M, N, K); return true;
            case 2: seq_kernel<2><<<(M + 7) / 8 * (N / 16) / 4 + 1, 128, 0, st>>>(x, w, y, M, N, K); return true;
            case 3: if (M > engine::cuda::kSkinnyMaxM || !engine::cuda::skinny_gemm_supported(M, N, K)) return false;
                    engine::cuda::skinny_gemm(x, w, y, true, M, N, K, st); return true;
            case 4: if (M > engine::cuda::kMmaMaxM || !engine::cuda::gemv_mma_x_in_shared(M, N, K)) return false;
                    engine::cuda::gemv_mma(x, w, y, true, M, N, K, st); return true;
            case 5: if (M > engine::cuda::kUnitsMaxM || !engine::cuda::gemv_units_supported(M, N, K)) return false;
                    engine::cuda::gemv_units(x, w, y, true, M, N, K, st); return true;
            default: {
              const float al = 1.f, be = 0.f;
              return cublasLtMatmul(h, op, &al, w, la, x, lay[M].first, &be, y, lay[M].second, y, lay[M].second, &c.algo, ws, wsMax, st) == CUBLAS_STATUS_SUCCESS;
            }
          }
        };
        if (c.lt) {
          cublasLtMatmulHeuristicResult_t chk{};
          if (cublasLtMatmulAlgoCheck(h, op, la, lay[M].first, lay[M].second, lay[M].second, &c.algo, &chk) != CUBLAS_STATUS_SUCCESS || chk.workspaceSize > wsMax) { line += "      -       "; continue; }
        }
        CK(cudaMemsetAsync(y, 0xff, size_t(M) * N * 4, st));
        if (!run(0)) { line += "      -       "; continue; }
        CK(cudaStreamSynchronize(st));
        if (cudaGetLastError() != cudaSuccess) { line += "     err      "; continue; }
        CK(cudaMemcpy(hy.data(), y, size_t(M) * N * 4, cudaMemcpyDeviceToHost));
        const bool eq = !memcmp(hy.data(), href.data(), size_t(M) * N * 4);
        uint64_t hsh = 1469598103934665603ull;
        const unsigned char* p = reinterpret_cast<const unsigned char*>(hy.data());
        for (size_t i = 0; i < size_t(N) * 4; ++i) hsh = (hsh ^ p[i]) * 1099511628211ull;
        int gid = groups.emplace(hsh, int(groups.size())).first->second;
        // within-candidate invariance is read off the row-0 group per M
        for (int i = 1; i < 3; ++i) run(i);
        cudaEventRecord(e0, st);
        for (int i = 0; i < iters; ++i) run(i);
        cudaEventRecord(e1, st); cudaEventSynchronize(e1);
        float ms; cudaEventElapsedTime(&ms, e0, e1);
        snprintf(buf, sizeof buf, " %7.1f%c g%-3d", ms * 1000 / iters, eq ? '=' : ' ', gid);
        line += buf;
      }
      printf("%-52s %s\n", c.name.c_str(), line.c_str());
    }
    printf("M:%-49s", ""); for (int M : Ms) printf(" %7d      ", M); printf("\n");
    fflush(stdout);
    for (auto p : W) cudaFree(p);
    cudaFree(x); cudaFree(y); cudaFree(ref);
  }
  return 0;
}
