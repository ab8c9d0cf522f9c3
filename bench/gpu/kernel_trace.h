// Kernel timestamps from the GPU, inside CUDA graphs too: a CUPTI activity trace (concurrent-kernel records,
// one per launched kernel or graph kernel node) for the GPU benchmarks, where nsys is not installed. What the
// records are for: each kernel's duration and the gap before it within a graph replay (negative under PDL:
// the kernel started before the one ahead of it ended). Tracing adds its own cost per kernel, so a traced
// step is compared with an untraced one in the same run, never reported as the step's time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gpu_bench {

struct KernelRecord {
  uint64_t start_ns = 0, end_ns = 0;  // GPU timestamps
  uint32_t graph_id = 0;              // 0: not launched from a graph
  uint64_t graph_node_id = 0;
  uint32_t stream_id = 0;
  std::string name;                   // demangled
};

/// Starts recording every kernel the process launches from now on; called before the CUDA context and any graph
/// exist, so that every graph's kernel nodes are traced. Throws std::runtime_error naming the CUPTI call that
/// failed, or saying that the build has no CUPTI.
void kernel_trace_start();
/// Waits for the device and drops what was recorded so far (recording goes on).
void kernel_trace_clear();
/// Waits for the device and returns what was recorded since the last clear (or the start), ordered by start;
/// recording goes on from an empty record.
std::vector<KernelRecord> kernel_trace_take();

/// Writes records as CSV with nsys's cuda_gpu_trace column names (Start (ns), Duration (ns), Name, and the graph
/// ids), the form bench/gpu/graph_trace.py reads. Throws std::runtime_error naming the file when it cannot.
void write_kernel_trace_csv(const std::vector<KernelRecord>& records, const std::string& path);

}  // namespace gpu_bench
