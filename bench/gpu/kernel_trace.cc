// CUPTI activity tracing for the GPU benchmarks (kernel_trace.h).
#include "bench/gpu/kernel_trace.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>

#ifdef LLM_HAVE_CUPTI
#include <cuda_runtime_api.h>
#include <cupti.h>
#include <cxxabi.h>
#endif

namespace gpu_bench {

#ifdef LLM_HAVE_CUPTI
namespace {

std::mutex g_mu;
std::vector<KernelRecord> g_records;

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  throw std::runtime_error(std::string("CUPTI: ") + what + ": " + (msg ? msg : "unknown error"));
}

std::string demangle(const char* name) {
  if (!name) return "?";
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && d ? d : name;
  std::free(d);
  return out;
}

constexpr size_t kBufferBytes = size_t(8) << 20;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* rec = nullptr;
  std::vector<KernelRecord> got;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    // The record layout of this CUPTI's headers (CUDA 13: version 10); the library fills the version it was
    // built with, the one these headers describe.
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    got.push_back({k->start, k->end, k->graphId, k->graphNodeId, k->streamId, demangle(k->name)});
  }
  size_t dropped = 0;
  cuptiActivityGetNumDroppedRecords(nullptr, 0, &dropped);
  if (dropped) std::fprintf(stderr, "kernel trace: CUPTI dropped %zu records\n", dropped);
  std::free(buffer);
  std::lock_guard<std::mutex> lk(g_mu);
  g_records.insert(g_records.end(), got.begin(), got.end());
}

}  // namespace

void kernel_trace_start() {
  {
    std::lock_guard<std::mutex> lk(g_mu);
    g_records.clear();
  }
  static const bool registered = [] {
    check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
    return true;
  }();
  (void)registered;
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)");
}

void kernel_trace_clear() { (void)kernel_trace_take(); }

std::vector<KernelRecord> kernel_trace_take() {
  cudaDeviceSynchronize();
  check(cuptiActivityFlushAll(1), "cuptiActivityFlushAll");
  std::vector<KernelRecord> out;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    out.swap(g_records);
  }
  std::sort(out.begin(), out.end(), [](const KernelRecord& a, const KernelRecord& b) { return a.start_ns < b.start_ns; });
  return out;
}
#else
void kernel_trace_start() { throw std::runtime_error("kernel trace: this build has no CUPTI (CUDA::cupti not found)"); }
void kernel_trace_clear() {}
std::vector<KernelRecord> kernel_trace_take() { return {}; }
#endif

void write_kernel_trace_csv(const std::vector<KernelRecord>& records, const std::string& path) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("kernel trace: cannot write " + path);
  f << "Start (ns),Duration (ns),Graph,Graph node,Stream,Name\n";
  for (const KernelRecord& r : records) {
    std::string n = r.name;
    std::replace(n.begin(), n.end(), '"', '\'');
    f << r.start_ns << ',' << (r.end_ns - r.start_ns) << ',' << r.graph_id << ',' << r.graph_node_id << ','
      << r.stream_id << ",\"" << n << "\"\n";
  }
  if (!f) throw std::runtime_error("kernel trace: write failed: " + path);
}

}  // namespace gpu_bench
