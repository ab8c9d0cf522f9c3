// gemm_tma (gemm_tma.cu; docs/cuda-notes.md, v19): y[m, n] = sum_k x[m, k] * w[n, k] for decode GEMMs of
// 1..kTmaMaxM rows on Hopper, the weights streamed by the TMA unit into a ring of shared-memory stages and
// multiplied by one warpgroup's wgmma (the weights as A, 64 rows a tile; x as B, M padded to 8, 16, 32 or 64).
// One block per SM over a contiguous range of (64-row tile, 64-k chunk) units, so every SM streams the same
// bytes whatever N is; a tile cut between blocks is summed by the last of them to finish, from fp32 partials
// in a scratch buffer, in block order (the same bits every run).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

namespace engine::cuda {

constexpr int kTmaMaxM = 64;

/// Whether gemm_tma runs this product: an sm_90 device (wgmma, TMA), 1 <= M <= kTmaMaxM, K % 8 == 0 (TMA's
/// 16-byte row pitch), N within the scratch's tile counters, x and w 16-byte aligned.
bool gemm_tma_supported(int M, int N, int K, const void* x, const void* w);

/// The scratch a stream's gemm_tma calls share: per-block fp32 partial tiles and one arrival counter per
/// 64-row tile (zero between calls: the block that sums a tile resets its counter). Kernels on one stream run
/// in order, so one scratch serves every call on it.
class TmaScratch {
 public:
  TmaScratch();
  ~TmaScratch();
  TmaScratch(const TmaScratch&) = delete;
  TmaScratch& operator=(const TmaScratch&) = delete;
  float* partials() const { return partials_; }
  unsigned* counters() const { return counters_; }
  /// For measurements: while set, every call writes kTmaPhaseSlots timestamps per block into `device_buffer`
  /// (at least kTmaPhaseSlots x the SM count; see gemm_tma.cu); nullptr (the default) records nothing.
  void record_phases(unsigned long long* device_buffer) { phases_ = device_buffer; }
  unsigned long long* phases() const { return phases_; }
  static constexpr int kMaxTiles = 8192;  ///< N <= 8192 * 64

 private:
  float* partials_ = nullptr;
  unsigned* counters_ = nullptr;
  unsigned long long* phases_ = nullptr;
};

/// A block's timestamps when TmaScratch::record_phases is set: [0] %globaltimer (ns) at entry, [1] clock64 at
/// entry, [2] clock64 once the first stages' loads are issued (after the PDL wait), [3] once the first stage
/// has landed, [4] once the last load is issued, [5] once the consumers are done (their last store), [6]
/// %globaltimer then. Clock64 counts the block's own SM's cycles: compare [1]..[5] within a block only.
constexpr int kTmaPhaseSlots = 8;

/// y [M, N]: f32 when y_f32, else bf16 (rounded once). Throws std::invalid_argument where gemm_tma_supported
/// is false.
void gemm_tma(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, bool y_f32, int M, int N, int K,
              const TmaScratch& scratch, cudaStream_t s);

/// How gemm_tma runs (all for measurements; the defaults are the kernel as described above).
struct GemmTmaTuning {
  bool pipelined = true;       ///< one stage's wgmmas in flight while the next is issued; false: a wait per stage (the first version)
  int accumulator_sets = 4;    ///< 4 independent chains added at the tile's end, or 1 (another fixed order of the sums)
  bool partials_first = true;  ///< a block's shared tiles before its whole tiles; false: its units in order
  bool evict_first = true;     ///< the weights' TMA loads carry the L2 evict-first hint
  bool prefetch_descriptors = false;  ///< the producer asks for both tensor maps' descriptors at its start
  int stages = 0;              ///< the ring's stages, 2..16; 0: by M (16 at M <= 16, 12 at <= 32, 10 at <= 64)
  bool pdl = true;             ///< launched with programmatic dependent launch (where pdl_enabled()); false: plain stream order
};
/// Sets the tuning of every later gemm_tma call in the process. Only accumulator_sets changes the bits.
void set_gemm_tma_tuning(const GemmTmaTuning& t);

}  // namespace engine::cuda
