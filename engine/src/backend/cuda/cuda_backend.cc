// The CUDA backend's forward pass. One step = the inputs staged into one pinned buffer and copied in one
// transfer, then per layer: add+RMSNorm, QKV GEMM, RoPE+KV write, paged attention, O GEMM, add+RMSNorm,
// gate/up GEMM, SwiGLU, down GEMM; then final norm of the rows that want logits, lm_head GEMM (f32
// logits) and argmax. Attention: steps with a prompt chunk (a slice of query_len > 1) send those slices
// through the tiled prefill kernel (attention_prefill.cu) and the rest through the paged kernel over a token
// list; other steps (and the deterministic mode) run the paged kernel over all tokens. Decode-only steps
// run as a CUDA graph captured per padded batch size: all inputs sit in fixed device buffers, so a replay
// only needs the one input copy before it.
// Two modes (EngineConfig::dtype): bf16 (auto, bf16) stores weights, KV cache and activations in bf16;
// f32 stores everything in float and runs every GEMM as a plain f32 SGEMM (a reference mode that matches
// the CPU backend). The pass is one template, run_layers_as<E>, over the storage type E.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"

#define LLM_CUBLAS_CHECK(call)                                                                      \
  do {                                                                                              \
    cublasStatus_t st_ = (call);                                                                    \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                               \
      throw std::runtime_error(std::string("cuBLAS error in " #call ": ") + cublasGetStatusString(st_)); \
  } while (0)

namespace engine::cuda {
namespace {
constexpr size_t kCublasWorkspace = 32u << 20;
constexpr int kMaxSplits = 16;
constexpr int64_t kReserveBytes = 512ll << 20;  // cuBLAS, graphs, allocator slack beyond our buffers
// Input sections of tok_cap_ int32 each: tokens, positions, slots, bt_start, logit rows, attention lists
// (n_tiles packed prefill tiles, then n_dec decode token indices: at most T entries, as every tile holds at
// least one token); the block tables follow.
constexpr int kSections = 6;
}  // namespace

// Profiling: one event after each named stage; times are summed per name.
struct CudaBackend::Marks {
  cudaStream_t s;
  std::vector<std::pair<std::string, cudaEvent_t>> ev;
  void mark(const char* name) {
    cudaEvent_t e;
    LLM_CUDA_CHECK(cudaEventCreate(&e));
    LLM_CUDA_CHECK(cudaEventRecord(e, s));
    ev.emplace_back(name, e);
  }
};

CudaBackend::CudaBackend(const EngineConfig& cfg) : cfg_(cfg) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0)
    throw ModelLoadError(std::string("the cuda backend found no usable CUDA device (") +
                         (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")");
  f32_ = cfg.dtype == ComputeDType::kF32;
  cudaDeviceProp prop{};
  LLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  num_sms_ = prop.multiProcessorCount;
  LLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  LLM_CUBLAS_CHECK(cublasCreate(&cublas_));
  LLM_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  LLM_CUDA_CHECK(cudaMalloc(&cublas_ws_, kCublasWorkspace));
  LLM_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_, kCublasWorkspace));
  // The default math mode (what a new handle has; set so that nothing inherited can change it) allows no
  // TF32 or BF16x9 emulation for f32 inputs. The f32 mode also asks for CUBLAS_COMPUTE_32F_PEDANTIC (gemm()),
  // which keeps f32 arithmetic whatever the math mode or the environment (NVIDIA_TF32_OVERRIDE, emulation
  // strategy) say. bf16 inputs use the tensor cores with f32 accumulation in either math mode.
  LLM_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  // Switches for measuring what each part buys: LLM_CUDA_GRAPHS=0 (eager decode), LLM_CUDA_GEMV=0 (cuBLAS at M <= 4).
  if (const char* g = std::getenv("LLM_CUDA_GRAPHS"); g && std::string(g) == "0") use_graphs_ = false;
  if (const char* g = std::getenv("LLM_CUDA_GEMV"); g && std::string(g) == "0") use_gemv_ = false;
  // LLM_CUDA_PREFILL_KERNEL=0: prefill tokens through the per-token paged kernel (A/B timing).
  if (const char* g = std::getenv("LLM_CUDA_PREFILL_KERNEL"); g && std::string(g) == "0") use_prefill_kernel_ = false;
  if (cfg.deterministic) {
    // 128 rows: decode steps of up to 128 sequences and every prefill chunk of 128 tokens cost one pass over
    // the weights (docs/cuda-notes.md has what it costs). LLM_CUDA_DET_ROWS changes it for measurements.
    det_rows_ = 128;
    if (const char* r = std::getenv("LLM_CUDA_DET_ROWS")) det_rows_ = std::max(1, std::atoi(r));
    use_gemv_ = false;  // a GEMV at one row and cuBLAS at more would sum in different orders
    // A token's attention must take the same path whatever else is in the step; the prefill kernel sums in
    // another order than the paged kernel, and a tile's boundaries depend on the chunking of the prompt, so
    // this mode keeps the paged kernel for every token.
    use_prefill_kernel_ = false;
  }
}

CudaBackend::~CudaBackend() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (auto& [b, g] : graphs_) cudaGraphExecDestroy(g);
  free_activations();
  if (kv_) cudaFree(kv_);
  w_.free_all();
  if (cublas_) cublasDestroy(cublas_);
  if (cublas_ws_) cudaFree(cublas_ws_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::load(const ModelWeights& w) {
  mc_ = w.config;
  const int max_len = std::max({mc_.max_seq_len, cfg_.max_model_len, 1});
  w_ = upload_weights(w, max_len, f32_);
  loaded_ = true;
  const int64_t max_blocks_per_seq = (max_len + cfg_.block_size - 1) / std::max(cfg_.block_size, 1);
  ensure_capacity(std::max({cfg_.max_num_batched_tokens, graph_size_for(cfg_.max_num_seqs), 1}),
                  std::max(cfg_.max_num_seqs, 1) * max_blocks_per_seq + 1);
}

int64_t CudaBackend::kv_bytes_per_token() const {
  return 2ll * mc_.n_layers * mc_.n_kv_heads * mc_.head_dim * static_cast<int64_t>(elem_bytes());
}

int64_t CudaBackend::default_kv_budget_bytes() const {
  size_t free_b = 0, total_b = 0;
  LLM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const int64_t used = static_cast<int64_t>(total_b - free_b);
  const int64_t budget = static_cast<int64_t>(cfg_.gpu_memory_utilization * static_cast<double>(total_b)) - used -
                         kReserveBytes;
  return std::max<int64_t>(budget, 0);
}

void CudaBackend::allocate_kv_cache(int64_t num_blocks, int block_size) {
  if (!loaded_) throw std::logic_error("cuda backend: allocate_kv_cache before load");
  if (kv_) cudaFree(kv_);
  kv_ = nullptr;
  for (auto& [b, g] : graphs_) cudaGraphExecDestroy(g);
  graphs_.clear();
  num_blocks_ = num_blocks;
  block_size_ = block_size;
  const size_t bytes = static_cast<size_t>(num_blocks) * block_size * kv_bytes_per_token();
  LLM_CUDA_CHECK(cudaMalloc(&kv_, bytes));
  LLM_CUDA_CHECK(cudaMemset(kv_, 0, bytes));  // padding rows of graphs read block 0
}

// Per layer: K cache then V cache, each E [num_blocks, nkv, block_size, hd].
void* CudaBackend::k_cache(int layer) const {
  const int64_t layer_bytes = num_blocks_ * block_size_ * int64_t{mc_.n_kv_heads} * mc_.head_dim * elem_bytes();
  return static_cast<char*>(kv_) + (2 * int64_t{layer}) * layer_bytes;
}
void* CudaBackend::v_cache(int layer) const {
  const int64_t layer_bytes = num_blocks_ * block_size_ * int64_t{mc_.n_kv_heads} * mc_.head_dim * elem_bytes();
  return static_cast<char*>(kv_) + (2 * int64_t{layer} + 1) * layer_bytes;
}

void CudaBackend::free_activations() {
  for (void* p : act_allocs_) cudaFree(p);
  act_allocs_.clear();
  if (in_host_) cudaFreeHost(in_host_);
  if (ids_host_) cudaFreeHost(ids_host_);
  in_host_ = ids_host_ = nullptr;
  tok_cap_ = 0;
  bt_cap_ = 0;
}

void CudaBackend::ensure_capacity(int tokens, int64_t bt_entries) {
  if (tokens <= tok_cap_ && bt_entries <= bt_cap_) return;
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (auto& [b, g] : graphs_) cudaGraphExecDestroy(g);  // they point at the old buffers
  graphs_.clear();
  int tc = std::max(tokens, tok_cap_);
  if (det_rows_ > 0) tc = (tc + det_rows_ - 1) / det_rows_ * det_rows_;  // room for the padded GEMM rows
  const int64_t bc = std::max(bt_entries, bt_cap_);
  free_activations();
  tok_cap_ = tc;
  bt_cap_ = bc;
  auto alloc = [&](size_t bytes) {
    void* p = nullptr;
    LLM_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
    LLM_CUDA_CHECK(cudaMemset(p, 0, std::max<size_t>(bytes, 16)));  // padding rows hold zeros, never NaN
    act_allocs_.push_back(p);
    return p;
  };
  const size_t T = tc, dim = mc_.dim, hd = mc_.head_dim, qkv = size_t(mc_.n_heads + 2 * mc_.n_kv_heads) * hd,
               qd = size_t(mc_.n_heads) * hd, hid = mc_.hidden_dim, V = mc_.vocab_size, E = elem_bytes();
  x_ = static_cast<float*>(alloc(T * dim * 4));
  h_ = alloc(T * dim * E);
  qkv_ = static_cast<float*>(alloc(T * qkv * 4));
  q_ = alloc(T * qd * E);
  attn_ = alloc(T * qd * E);
  delta_ = static_cast<float*>(alloc(T * dim * 4));
  gu_ = alloc(T * 2 * hid * E);
  act_ = alloc(T * hid * E);
  hf_ = alloc(T * dim * E);
  logits_ = static_cast<float*>(alloc(T * V * 4));
  ids_ = static_cast<int32_t*>(alloc(T * 4));
  // Splits are used only while T*nh*splits stays under ~16 blocks per SM (splits_for).
  part_ = static_cast<float*>(alloc(size_t(16 * num_sms_ + kMaxSplits * mc_.n_heads) * (hd + 2) * 4));
  const size_t in_ints = kSections * T + static_cast<size_t>(bc);
  in_dev_ = static_cast<int32_t*>(alloc(in_ints * 4));
  LLM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&in_host_), in_ints * 4));
  LLM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&ids_host_), T * 4));
}

int CudaBackend::splits_for(int T) const {
  if (det_rows_ > 0) return 1;  // split boundaries would depend on T, and with them the order of the sums
  const int blocks = T * mc_.n_heads;
  const int want = (8 * num_sms_ + blocks - 1) / blocks;
  return std::clamp(want, 1, kMaxSplits);
}

int CudaBackend::graph_size_for(int T) const {
  if (T <= 8) {
    int b = 1;
    while (b < T) b *= 2;
    return b;
  }
  return (T + 15) / 16 * 16;
}

CudaBackend::Step CudaBackend::stage_inputs(const StepBatch& b, int pad_to) {
  const int T = b.num_tokens();
  int n_logits = 0;
  for (const SeqSlice& s : b.seqs) n_logits += s.want_logits ? 1 : 0;
  ensure_capacity(std::max(pad_to, T), static_cast<int64_t>(b.block_tables.size()) + 1);
  const int cap = tok_cap_;
  int32_t* tok = in_host_;
  int32_t* pos = in_host_ + cap;
  int32_t* slot = in_host_ + 2 * cap;
  int32_t* bts = in_host_ + 3 * cap;
  int32_t* rows = in_host_ + 4 * cap;
  int32_t* lists = in_host_ + 5 * cap;
  int32_t* bt = in_host_ + kSections * cap;
  const int nbt = static_cast<int>(b.block_tables.size());
  std::memcpy(bt, b.block_tables.data(), nbt * sizeof(int32_t));
  bt[nbt] = 0;  // padding rows attend to block 0 (results discarded)
  std::memcpy(tok, b.tokens.data(), T * sizeof(int32_t));
  std::memcpy(pos, b.positions.data(), T * sizeof(int32_t));
  int r = 0;
  // Prefill tiles: slices with query_len > 1 in tiles of up to kPrefillTileQ tokens; every other token goes
  // to the decode list. Both only when some slice has more than one query token (else the step keeps the
  // paged kernel over all tokens, which is what graphs capture).
  const bool tiles_on = use_prefill_kernel_ && prefill_attention_supports_head_dim(mc_.head_dim) &&
                        std::any_of(b.seqs.begin(), b.seqs.end(), [](const SeqSlice& s) { return s.query_len > 1; });
  int n_tiles = 0;
  if (tiles_on)
    for (const SeqSlice& s : b.seqs)
      if (s.query_len > 1)
        for (int j0 = 0; j0 < s.query_len; j0 += kPrefillTileQ)
          lists[n_tiles++] = prefill_tile(s.query_start + j0, std::min(kPrefillTileQ, s.query_len - j0));
  int n_dec = 0;
  for (const SeqSlice& s : b.seqs) {
    if (tiles_on && s.query_len == 1) lists[n_tiles + n_dec++] = s.query_start;
    for (int j = 0; j < s.query_len; ++j) {
      const int t = s.query_start + j;
      const int p = b.positions[t];
      if (p < 0 || p >= w_.rope_len || p / block_size_ >= s.num_blocks)
        throw std::out_of_range("cuda backend: token position " + std::to_string(p) +
                                " outside the sequence's blocks or the model's context");
      const int32_t blk = b.block_tables[s.block_table_start + p / block_size_];
      slot[t] = blk * block_size_ + p % block_size_;
      bts[t] = s.block_table_start;
    }
    if (s.want_logits) rows[r++] = s.query_start + s.query_len - 1;
  }
  const int padded = std::max(pad_to, T);
  for (int t = T; t < padded; ++t) {
    tok[t] = 0;
    pos[t] = 0;
    slot[t] = -1;
    bts[t] = nbt;
  }
  for (int i = n_logits; i < (pad_to > T ? padded : n_logits); ++i) rows[i] = i;
  // One copy: the five token sections plus the used part of the block tables.
  LLM_CUDA_CHECK(cudaMemcpyAsync(in_dev_, in_host_, (kSections * size_t(cap) + nbt + 1) * 4,
                                 cudaMemcpyHostToDevice, stream_));
  Step st;
  st.T = padded;
  st.n_logits = pad_to > T ? padded : n_logits;
  st.num_splits = splits_for(padded);
  if (tiles_on) {
    st.n_tiles = n_tiles;
    st.n_dec = n_dec;
    st.num_splits = n_dec > 0 ? splits_for(n_dec) : 1;  // part_ is indexed by decode-list entry
  }
  return st;
}

// x: E [M, K], w: E [N, K] -> y [M, N]: f32 when y_f32 (always in the f32 mode), else E.
void CudaBackend::gemm(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K) {
  // Decode at batch 1 (bf16 mode): the GEMV streams the weights at ~5% more bandwidth than cuBLAS. At M = 4
  // it was 42% slower than cuBLAS (x re-read from L1 per weight chunk; docs/cuda-notes.md), so only M = 1
  // takes it. The GEMV is bf16-only: the f32 mode uses cuBLAS at every M.
  if (!f32_ && use_gemv_ && M == 1 && gemv_supported(M, K)) {
    cuda::gemv(static_cast<const bf16*>(x), static_cast<const bf16*>(w), y, y_f32, M, N, K, stream_);
    return;
  }
  // Row-major y[M,N] = x[M,K] @ w[N,K]^T is, column-major, y^T[N,M] = op(w)[N,K] @ x^T[K,M] with op = T.
  // f32 mode: f32 x f32 -> f32 with CUBLAS_COMPUTE_32F_PEDANTIC: standard f32 arithmetic, never TF32 (see
  // the constructor). bf16 mode: bf16 x bf16 -> bf16 or f32, f32 accumulation on the tensor cores.
  const cudaDataType in_t = f32_ ? CUDA_R_32F : CUDA_R_16BF;
  const cudaDataType out_t = (f32_ || y_f32) ? CUDA_R_32F : CUDA_R_16BF;
  const cublasComputeType_t compute = f32_ ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
  const float alpha = 1.f, beta = 0.f;
  if (det_rows_ > 0) {
    // Deterministic: always det_rows_ rows per call (rows past M are padding in buffers sized for it), so
    // cuBLAS sees one shape whatever the batch; a row's result depends only on that row of x.
    const size_t in_b = elem_bytes(), out_b = out_t == CUDA_R_32F ? 4 : 2;
    for (int m0 = 0; m0 < M; m0 += det_rows_)
      LLM_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, N, det_rows_, K, &alpha, w, in_t, K,
                                    static_cast<const char*>(x) + size_t(m0) * K * in_b, in_t, K, &beta,
                                    static_cast<char*>(y) + size_t(m0) * N * out_b, out_t, N, compute,
                                    CUBLAS_GEMM_DEFAULT));
    return;
  }
  LLM_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, in_t, K, x, in_t, K, &beta, y,
                                out_t, N, compute, CUBLAS_GEMM_DEFAULT));
}

// One step's pass with storage type E. Each stage's shapes are in kernels.h (layouts); what is f32 in both
// modes: the residual x, the QKV GEMM output (RoPE reads it before any rounding) and delta, the O and down
// GEMM outputs (added to x in f32 by add_rmsnorm).
template <typename E>
void CudaBackend::run_layers_as(const Step& st, Marks* mk) {
  const int T = st.T, dim = mc_.dim, nh = mc_.n_heads, nkv = mc_.n_kv_heads, hd = mc_.head_dim;
  const int qkv_dim = (nh + 2 * nkv) * hd, hid = mc_.hidden_dim;
  const float eps = mc_.norm_eps;
  const int cap = tok_cap_;
  const int32_t* tok = in_dev_;
  const int32_t* pos = in_dev_ + cap;
  const int32_t* slot = in_dev_ + 2 * cap;
  const int32_t* bts = in_dev_ + 3 * cap;
  const int32_t* rows = in_dev_ + 4 * cap;
  const int32_t* lists = in_dev_ + 5 * cap;
  const int32_t* bt = in_dev_ + kSections * cap;
  E* h = static_cast<E*>(h_);
  E* q = static_cast<E*>(q_);
  E* attn = static_cast<E*>(attn_);
  E* gu = static_cast<E*>(gu_);
  E* act = static_cast<E*>(act_);
  E* hf = static_cast<E*>(hf_);
  auto mark = [&](const char* n) { if (mk) mk->mark(n); };

  embedding<E>(tok, static_cast<const E*>(w_.tok_emb), x_, T, dim, stream_);
  mark("embedding");
  for (int l = 0; l < mc_.n_layers; ++l) {
    const DeviceLayer& L = w_.layers[l];
    E* kc = static_cast<E*>(k_cache(l));
    E* vc = static_cast<E*>(v_cache(l));
    add_rmsnorm<E>(x_, l == 0 ? nullptr : delta_, L.attn_norm, h, nullptr, T, dim, eps, true, stream_);
    mark("add_rmsnorm");
    gemm(h, L.wqkv, qkv_, true, T, qkv_dim, dim);
    mark("qkv_gemm");
    rope_kv_write<E>(qkv_, pos, slot, w_.rope, q, kc, vc, T, nh, nkv, hd, block_size_, stream_);
    mark("rope_kv_write");
    AttentionArgs<E> a;
    a.q = q;
    a.q_stride = nh * hd;
    a.k_cache = kc;
    a.v_cache = vc;
    a.positions = pos;
    a.bt_start = bts;
    a.block_tables = bt;
    a.out = attn;
    a.part = part_;
    a.T = T;
    a.nh = nh;
    a.nkv = nkv;
    a.hd = hd;
    a.block_size = block_size_;
    a.num_splits = st.num_splits;
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    if (st.n_tiles > 0) {
      // Prefill tiles and decode rows write disjoint rows of attn.
      paged_attention_prefill(a, lists, st.n_tiles, stream_);
      a.tokens = lists + st.n_tiles;
      a.T = st.n_dec;
    }
    paged_attention(a, stream_);
    mark("attention");
    gemm(attn, L.wo, delta_, true, T, dim, nh * hd);
    mark("o_gemm");
    add_rmsnorm<E>(x_, delta_, L.ffn_norm, h, nullptr, T, dim, eps, true, stream_);
    mark("add_rmsnorm");
    gemm(h, L.wgu, gu, false, T, 2 * hid, dim);
    mark("gate_up_gemm");
    swiglu<E>(gu, act, T, hid, stream_);
    mark("swiglu");
    gemm(act, L.wd, delta_, true, T, dim, hid);
    mark("down_gemm");
  }
  add_rmsnorm<E>(x_, mc_.n_layers > 0 ? delta_ : nullptr, w_.final_norm, hf, rows, st.n_logits, dim, eps, false,
                 stream_);
  mark("final_norm");
  gemm(hf, w_.lm_head, logits_, true, st.n_logits, mc_.vocab_size, dim);
  mark("lm_head_gemm");
  argmax_rows(logits_, ids_, st.n_logits, mc_.vocab_size, stream_);
  mark("argmax");
}

void CudaBackend::run_layers(const Step& st, Marks* mk) {
  if (f32_) run_layers_as<float>(st, mk);
  else run_layers_as<bf16>(st, mk);
}

CudaBackend::Step CudaBackend::run(const StepBatch& b) {
  if (!kv_) throw std::logic_error("cuda backend: forward before allocate_kv_cache");
  const int T = b.num_tokens();
  bool decode_only = use_graphs_ && T > 0 && T == static_cast<int>(b.seqs.size()) && T <= cfg_.max_num_seqs;
  for (const SeqSlice& s : b.seqs) decode_only = decode_only && s.query_len == 1 && s.want_logits;
  if (!decode_only) {
    const Step st = stage_inputs(b, T);
    run_layers(st, nullptr);
    return st;
  }
  const int padded = graph_size_for(T);
  const Step st = stage_inputs(b, padded);
  auto it = graphs_.find(padded);
  if (it == graphs_.end()) {
    cudaGraph_t g = nullptr;
    LLM_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      run_layers(st, nullptr);
    } catch (...) {
      cudaStreamEndCapture(stream_, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    LLM_CUDA_CHECK(cudaStreamEndCapture(stream_, &g));
    cudaGraphExec_t exec = nullptr;
    LLM_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    cudaGraphDestroy(g);
    it = graphs_.emplace(padded, exec).first;
  }
  LLM_CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
  return st;
}

void CudaBackend::forward(const StepBatch& batch, float* logits) {
  const Step st = run(batch);
  int n_logits = 0;
  for (const SeqSlice& s : batch.seqs) n_logits += s.want_logits ? 1 : 0;
  if (n_logits > 0)
    LLM_CUDA_CHECK(cudaMemcpyAsync(logits, logits_, size_t(n_logits) * mc_.vocab_size * 4, cudaMemcpyDeviceToHost,
                                   stream_));
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  (void)st;
}

void CudaBackend::forward_argmax(const StepBatch& batch, int32_t* token_ids) {
  run(batch);
  int n_logits = 0;
  for (const SeqSlice& s : batch.seqs) n_logits += s.want_logits ? 1 : 0;
  if (n_logits > 0)
    LLM_CUDA_CHECK(cudaMemcpyAsync(ids_host_, ids_, size_t(n_logits) * 4, cudaMemcpyDeviceToHost, stream_));
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::memcpy(token_ids, ids_host_, size_t(n_logits) * 4);
}

std::vector<std::pair<std::string, double>> CudaBackend::profile(const StepBatch& batch) {
  if (!kv_) throw std::logic_error("cuda backend: profile before allocate_kv_cache");
  const Step st = stage_inputs(batch, batch.num_tokens());
  Marks mk{stream_, {}};
  mk.mark("start");
  run_layers(st, &mk);
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 1; i < mk.ev.size(); ++i) {
    float ms = 0;
    LLM_CUDA_CHECK(cudaEventElapsedTime(&ms, mk.ev[i - 1].second, mk.ev[i].second));
    auto it = std::find_if(out.begin(), out.end(), [&](auto& p) { return p.first == mk.ev[i].first; });
    if (it == out.end()) out.emplace_back(mk.ev[i].first, ms);
    else it->second += ms;
  }
  for (auto& [n, e] : mk.ev) cudaEventDestroy(e);
  return out;
}

void CudaBackend::fill_kv(float amp, uint64_t seed) {
  if (!kv_) throw std::logic_error("cuda backend: fill_kv before allocate_kv_cache");
  const int64_t n = num_blocks_ * block_size_ * kv_bytes_per_token() / static_cast<int64_t>(elem_bytes());
  if (f32_) fill_uniform(static_cast<float*>(kv_), n, amp, seed, stream_);
  else fill_uniform(static_cast<bf16*>(kv_), n, amp, seed, stream_);
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace engine::cuda

namespace engine {

std::unique_ptr<Backend> make_cuda_backend(const EngineConfig& config) {
  return std::make_unique<cuda::CudaBackend>(config);
}

std::vector<std::pair<std::string, double>> cuda_profile_forward(Backend& backend, const StepBatch& batch) {
  auto* b = dynamic_cast<cuda::CudaBackend*>(&backend);
  if (!b) throw std::invalid_argument("cuda_profile_forward: not a cuda backend");
  return b->profile(batch);
}

void cuda_fill_kv_cache(Backend& backend, float amp, uint64_t seed) {
  auto* b = dynamic_cast<cuda::CudaBackend*>(&backend);
  if (!b) throw std::invalid_argument("cuda_fill_kv_cache: not a cuda backend");
  b->fill_kv(amp, seed);
}

}  // namespace engine
