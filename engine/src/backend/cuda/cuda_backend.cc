// The CUDA backend: device setup, memory (KV cache, activations), staging a step's inputs, running it (eager or
// as a decode graph) and the copies back. One step = the inputs staged into one pinned buffer and copied in one
// transfer (step_inputs.h), then the layer pass (cuda_layer_pass.cc). Decode-only steps run as a CUDA graph
// captured per padded batch size (cuda_graphs.h). Switches: cuda_options.h; profiling: cuda_profile.h.
// Two modes (EngineConfig::dtype): bf16 (auto, bf16) stores weights, KV cache and activations in bf16;
// f32 stores everything in float and runs every GEMM as a plain f32 SGEMM (a reference mode that matches
// the CPU backend).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/cuda_profile.h"

namespace engine::cuda {
namespace {
constexpr int kMaxSplits = 16;
constexpr int64_t kReserveBytes = 512ll << 20;  // cuBLAS, graphs, allocator slack beyond our buffers
}  // namespace

CudaBackend::CudaBackend(const EngineConfig& cfg) : cfg_(cfg), opt_(read_cuda_options(cfg)) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0)
    throw ModelLoadError(std::string("the cuda backend found no usable CUDA device (") +
                         (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")");
  cudaDeviceProp prop{};
  LLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  num_sms_ = prop.multiProcessorCount;
  set_pdl_enabled(opt_.pdl && prop.major >= 9);
  set_kernel_carveout(opt_.smem_carveout);
  set_gemv_int_convert(opt_.gemv_int_cvt);
  set_gemv_l2_ahead(opt_.gemv_l2_ahead);
  set_gemv_bulk_prefix(opt_.gemv_bulk_prefix);
  set_ordered_gemv_shape(opt_.det_gemv_shape);
  set_gemv_mma_x_shared(opt_.gemv_mma_xsmem);
  set_gemv_mma_pingpong(opt_.gemv_mma_pp);
  set_gemm_tma_tuning(opt_.gemm_tma_tuning);
  LLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  gemm_.emplace(stream_, opt_);
}

CudaBackend::~CudaBackend() {
  if (stream_) cudaStreamSynchronize(stream_);
  graphs_.clear();
  free_activations();
  if (kv_) cudaFree(kv_);
  w_.free_all();
  gemm_.reset();
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::load(const ModelWeights& w) {
  mc_ = w.config;
  if (opt_.fp8_kv && !attention_supports_head_dim(mc_.head_dim))
    throw ModelLoadError("kv_cache_dtype fp8: no attention kernel for head_dim " + std::to_string(mc_.head_dim));
  use_decode_attention_ = opt_.attn_v2 && decode_attention_supports_head_dim(mc_.head_dim);
  const int max_len = std::max({mc_.max_seq_len, cfg_.max_model_len, 1});
  w_ = upload_weights(w, max_len, opt_.f32);
  loaded_ = true;
  const int64_t max_blocks_per_seq = (max_len + cfg_.block_size - 1) / std::max(cfg_.block_size, 1);
  const int max_rows = std::max({cfg_.max_num_batched_tokens, graph_batch_size(cfg_.max_num_seqs), 1});
  ensure_capacity(max_rows, std::max(cfg_.max_num_seqs, 1) * max_blocks_per_seq + 1);
  prepare_gemms(max_rows);
}

// The bf16 GEMMs choose (deterministic: and check) their algorithms here, before any graph is captured and
// before the KV cache takes the memory (gemm_tuned.h); a no-op in the f32 mode.
void CudaBackend::prepare_gemms(int max_rows) {
  const int dim = mc_.dim, hid = mc_.hidden_dim, qd = mc_.n_heads * mc_.head_dim;
  const int qkv_dim = (mc_.n_heads + 2 * mc_.n_kv_heads) * mc_.head_dim;
  std::vector<const void*> qkv, wo, gu, wd;
  for (const DeviceLayer& L : w_.layers) {
    qkv.push_back(L.wqkv);
    wo.push_back(L.wo);
    gu.push_back(L.wgu);
    wd.push_back(L.wd);
  }
  // The same shapes and output types as run_layers_as.
  gemm_->prepare(qkv, qkv_dim, dim, true, max_rows);
  gemm_->prepare(wo, dim, qd, true, max_rows);
  gemm_->prepare(gu, 2 * hid, dim, false, max_rows);
  gemm_->prepare(wd, dim, hid, true, max_rows);
  gemm_->prepare({w_.lm_head}, mc_.vocab_size, dim, true, max_rows);
  if (opt_.gemm_log) std::fprintf(stderr, "%s", gemm_->describe_tuned().c_str());
}

int64_t CudaBackend::kv_bytes_per_token() const {
  // fp8: one byte per element plus a float scale per (token, kv head) of K and of V.
  const int64_t row = opt_.fp8_kv ? mc_.head_dim + 4 : mc_.head_dim * kv_elem_bytes();
  return 2ll * mc_.n_layers * mc_.n_kv_heads * row;
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
  graphs_.clear();
  num_blocks_ = num_blocks;
  block_size_ = block_size;
  const size_t bytes = static_cast<size_t>(num_blocks) * block_size * kv_bytes_per_token();
  LLM_CUDA_CHECK(cudaMalloc(&kv_, bytes));
  LLM_CUDA_CHECK(cudaMemset(kv_, 0, bytes));  // padding rows of graphs read block 0
  if (opt_.graphs && opt_.graphs_at_load) capture_decode_graphs();
}

// A graph depends only on its padded batch size (every kernel's shape and launch comes from T; the inputs sit in
// fixed buffers), so a step of padding rows alone (no KV write, attending to the zeroed block 0) records the
// graph every later step of that size replays. Captured here, the few milliseconds a capture costs are not paid
// by the first step of each batch size during a run, inside some request's inter-token time.
void CudaBackend::capture_decode_graphs() {
  const StepBatch none;
  const int top = graph_batch_size(std::max(cfg_.max_num_seqs, 1));
  for (int T = 1; T <= top;) {
    const int padded = graph_batch_size(T);
    const Step st = stage_inputs(none, padded);
    graphs_.launch(padded, stream_, [&] { run_layers(st, nullptr); });
    T = padded + 1;
  }
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// Per layer: K cache then V cache, each [num_blocks, nkv, block_size, hd] of E (or fp8); with fp8, all layers'
// scales [num_blocks, nkv, block_size] (K then V of each layer) follow all the caches, so every cache row
// stays 16-byte aligned whatever the block count.
char* CudaBackend::kv_part(int layer, int part) const {
  const int64_t rows = num_blocks_ * block_size_ * int64_t{mc_.n_kv_heads};
  const int64_t cache = rows * mc_.head_dim * kv_elem_bytes();
  if (part < 2) return static_cast<char*>(kv_) + (2 * int64_t{layer} + part) * cache;
  return static_cast<char*>(kv_) + 2 * int64_t{mc_.n_layers} * cache + (2 * int64_t{layer} + part - 2) * rows * 4;
}
void* CudaBackend::k_cache(int layer) const { return kv_part(layer, 0); }
void* CudaBackend::v_cache(int layer) const { return kv_part(layer, 1); }
float* CudaBackend::k_scale(int layer) const {
  return opt_.fp8_kv ? reinterpret_cast<float*>(kv_part(layer, 2)) : nullptr;
}
float* CudaBackend::v_scale(int layer) const {
  return opt_.fp8_kv ? reinterpret_cast<float*>(kv_part(layer, 3)) : nullptr;
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
  graphs_.clear();  // they point at the old buffers
  int tc = std::max(tokens, tok_cap_);
  const int dr = opt_.det_rows;
  if (dr > 0) tc = (tc + dr - 1) / dr * dr;  // room for the padded GEMM rows
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
               qd = size_t(mc_.n_heads) * hd, hid = mc_.hidden_dim, V = mc_.vocab_size, E = opt_.elem_bytes();
  x_ = static_cast<float*>(alloc(T * dim * 4));
  x_alt_ = static_cast<float*>(alloc(kGemvMaxM * dim * 4));  // the fused GEMVs' second residual row (M = 1)
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
  // One counter per (token, head) of a split step (at most as many as partial rows), zeroed here and left at 0
  // by every launch: the last split block merges (AttentionArgs::split_count).
  split_count_ = static_cast<int*>(alloc(size_t(16 * num_sms_ + kMaxSplits * mc_.n_heads) * 4));
  const size_t in_ints = input_layout().ints(bt_cap_);
  in_dev_ = static_cast<int32_t*>(alloc(in_ints * 4));
  LLM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&in_host_), in_ints * 4));
  LLM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&ids_host_), T * 4));
}

int CudaBackend::splits_for(int T) const {
  if (opt_.det_rows > 0) return 1;  // split boundaries would depend on T, and with them the order of the sums
  const int blocks = T * mc_.n_heads;
  const int want = (opt_.attn_split_blocks * num_sms_ + blocks - 1) / blocks;
  return std::clamp(want, 1, kMaxSplits);
}

CudaBackend::Step CudaBackend::stage_inputs(const StepBatch& b, int pad_to) {
  ensure_capacity(std::max(pad_to, b.num_tokens()), static_cast<int64_t>(b.block_tables.size()) + 1);
  const int tile_q = opt_.prefill_kernel && prefill_attention_supports_head_dim(mc_.head_dim)
                         ? prefill_tile_queries(opt_.prefill_mma, !opt_.f32, mc_.head_dim)
                         : 0;
  const StagedInputs staged = stage_step_inputs(b, pad_to, tile_q, block_size_, w_.rope_len, input_layout(), in_host_);
  LLM_CUDA_CHECK(cudaMemcpyAsync(in_dev_, in_host_, staged.copy_ints * 4, cudaMemcpyHostToDevice, stream_));
  // With prefill tiles the paged kernel runs over the decode list only, and part_ is indexed by its entries.
  const int splits =
      staged.n_tiles > 0 ? (staged.n_dec > 0 ? splits_for(staged.n_dec) : 1) : splits_for(staged.T);
  return Step{staged, splits};
}

void CudaBackend::run(const StepBatch& b) {
  if (!kv_) throw std::logic_error("cuda backend: forward before allocate_kv_cache");
  if (!opt_.graphs || !is_graph_step(b, cfg_.max_num_seqs)) {
    run_layers(stage_inputs(b, b.num_tokens()), nullptr);
    return;
  }
  const int padded = graph_batch_size(b.num_tokens());
  const Step st = stage_inputs(b, padded);  // before the lookup: a reallocation here clears the graphs
  graphs_.launch(padded, stream_, [&] { run_layers(st, nullptr); });
}

void CudaBackend::forward(const StepBatch& batch, float* logits) {
  run(batch);
  const int n_logits = batch.num_logits();
  if (n_logits > 0)
    LLM_CUDA_CHECK(cudaMemcpyAsync(logits, logits_, size_t(n_logits) * mc_.vocab_size * 4, cudaMemcpyDeviceToHost,
                                   stream_));
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::forward_argmax(const StepBatch& batch, int32_t* token_ids) {
  run(batch);
  const int n_logits = batch.num_logits();
  if (n_logits > 0)
    LLM_CUDA_CHECK(cudaMemcpyAsync(ids_host_, ids_, size_t(n_logits) * 4, cudaMemcpyDeviceToHost, stream_));
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::memcpy(token_ids, ids_host_, size_t(n_logits) * 4);
}

void CudaBackend::fill_kv(float amp, uint64_t seed) {
  if (!kv_) throw std::logic_error("cuda backend: fill_kv before allocate_kv_cache");
  if (opt_.fp8_kv) {
    // uniform(-1, 1) in e4m3, every scale amp: values uniform(-amp, amp) as the other modes fill them.
    const int64_t rows = num_blocks_ * block_size_ * int64_t{mc_.n_kv_heads};
    fill_uniform_fp8(static_cast<uint8_t*>(kv_), 2 * int64_t{mc_.n_layers} * rows * mc_.head_dim, seed, stream_);
    const std::vector<float> scales(static_cast<size_t>(2 * int64_t{mc_.n_layers} * rows), amp);
    LLM_CUDA_CHECK(cudaMemcpy(k_scale(0), scales.data(), scales.size() * 4, cudaMemcpyHostToDevice));
  } else {
    const int64_t n = num_blocks_ * block_size_ * kv_bytes_per_token() / kv_elem_bytes();
    if (opt_.f32) fill_uniform(static_cast<float*>(kv_), n, amp, seed, stream_);
    else fill_uniform(static_cast<bf16*>(kv_), n, amp, seed, stream_);
  }
  LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace engine::cuda

namespace engine {

std::unique_ptr<Backend> make_cuda_backend(const EngineConfig& config) {
  return std::make_unique<cuda::CudaBackend>(config);
}

}  // namespace engine
