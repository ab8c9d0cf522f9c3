#!/usr/bin/env bash
# gemm_tma's A/B in one lent-GPU call (docs/cuda-notes.md, v19): build, its kernel test, the GEMMs alone
# with the per-block phases of a call (BM_GemmTmaPhases),
# (cuda_gemm_bench: cuBLAS / gemm_tma / gemv_mma, then gemm_tma's switches), the decode step with each
# switch (lease.sh's bench stage), and the backend's tests with gemm_tma on.
#   LLM_SHARED_DIR (assets), MS (GEMM rows, default "4|16|64"), VARIANTS (lease.sh's, default below),
#   The decode variants: the default; gemm_tma; with carveout 100; with a 6-stage ring; carveout 100 alone;
#   gemm_tma from M = 1 with batch 1's norm and SwiGLU fusions off (every batch-1 GEMM through it) against the
#   same fusions off without it (gemv_units).
#   GB_LIMIT (seconds for one cuda_gemm_bench run, 240), ACC1=0 skips the one-set timing, NCU=0 the ncu stage, NCU_GEMMS the path/shape/M it profiles;
#   RINGS (ring sizes for the GEMMs alone, default "4 8"), FIRST=1 also times the first version's consumer
#   (one set, unpipelined) alone
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$ROOT/build/gpu}
MS=${MS:-4|16|64}
STAGES=build bash "$ROOT/bench/gpu/lease.sh" 2>&1 | tail -2
timeout 150 "$B/tests/cuda_gemm_test" --gtest_filter='*GemmTma*' 2>&1 | grep -E 'OK|FAIL|Failure|worst|differ' | head -20
gb() { timeout ${GB_LIMIT:-240} "$B/engine/cuda_gemm_bench" --benchmark_filter="$1" --benchmark_min_time=0.05 2>&1 |
       grep -E '^BM_' | sed -E 's/ +/ /g; s#/manual_time##' | cut -d' ' -f1,2,7-; }
echo "== GEMMs alone (path 0 cuBLAS, 1 gemm_tma, 2 gemv_mma / shape 0 QKV, 1 O, 2 gate-up, 3 down / M)"
gb "BM_Gemm/[0-2]/[0-3]/($MS)/"
ph() { timeout ${GB_LIMIT:-240} "$B/engine/cuda_gemm_bench" --benchmark_filter="BM_GemmTmaPhases/" --benchmark_min_time=0.05 \
       --benchmark_counters_tabular=false 2>&1 | grep -E "^BM_" | sed -E "s/ +/ /g; s#/manual_time##" | cut -d" " -f1,2,7-; }
echo "== gemm_tma's phases (us; per block: mean and max over blocks, from entry)"
ph
echo "== gemm_tma's phases, descriptors prefetched"
LLM_CUDA_GEMM_TMA_PREFETCH=1 ph
echo "== gemm_tma, descriptors prefetched"
LLM_CUDA_GEMM_TMA_PREFETCH=1 gb "BM_Gemm/1/[0-3]/($MS)/"
echo "== gemm_tma, each block's units in order"
LLM_CUDA_GEMM_TMA_ORDER=0 gb "BM_Gemm/1/[0-3]/($MS)/"
if [[ ${ACC1:-1} == 1 ]]; then
  echo "== gemm_tma, one accumulator set"
  LLM_CUDA_GEMM_TMA_ACC=1 gb "BM_Gemm/1/[0-3]/($MS)/"
fi
for st in ${RINGS:-4 8}; do
  echo "== gemm_tma, a ring of $st stages"
  LLM_CUDA_GEMM_TMA_STAGES=$st gb "BM_Gemm/1/[0-3]/($MS)/"
done
if [[ -n ${FIRST:-} ]]; then
  echo "== gemm_tma, one accumulator set, unpipelined (the first version)"
  LLM_CUDA_GEMM_TMA_ACC=1 LLM_CUDA_GEMM_TMA_PIPE=0 gb "BM_Gemm/1/[0-3]/($MS)/"
fi
if [[ ${NCU:-1} == 1 ]] && command -v ncu >/dev/null; then
  # Each kernel alone from an idle GPU (ncu serializes): its own duration, DRAM bytes and shared-memory split.
  echo "== ncu: one kernel alone (path/shape/M: duration ns, DRAM bytes read, smem config bytes, grid)"
  for b in ${NCU_GEMMS:-0/1/16 1/1/16 0/2/16 1/2/16 1/2/4 1/1/64}; do
    timeout 60 ncu --clock-control none --print-kernel-base function --launch-skip 12 --launch-count 2 --csv --print-units base \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__shared_mem_config_size,launch__grid_size \
      "$B/engine/cuda_gemm_bench" --benchmark_filter="BM_Gemm/$b/" --benchmark_min_time=0.001 2>/dev/null |
      awk -F'","' -v b="$b" '/gpu__time_duration|dram__bytes_read|shared_mem_config|grid_size/ {
        gsub(/"/, "", $NF); k = $(NF-2); sub(/.*__/, "", k); printf "%s %s %s=%s\n", b, substr($5, 1, 40), k, $NF }' | head -8
  done
fi
echo "== decode step"
DEADLINE=${DEADLINE:-330} STAGES=bench PROFILE=${PROFILE:-16} FILTER=${FILTER:-'BM_DecodeStep/(1|2|4|8|16|64)/'} \
  VARIANTS=${VARIANTS:-"def;LLM_CUDA_GEMM_TMA=1;LLM_CUDA_GEMM_TMA=1 LLM_CUDA_CARVEOUT=100;LLM_CUDA_GEMM_TMA=1 LLM_CUDA_GEMM_TMA_STAGES=6;LLM_CUDA_CARVEOUT=100;LLM_CUDA_GEMM_TMA=1 LLM_CUDA_GEMM_TMA_MIN_M=1 LLM_CUDA_FUSE_NORM=0 LLM_CUDA_FUSE_SWIGLU=0;LLM_CUDA_FUSE_NORM=0 LLM_CUDA_FUSE_SWIGLU=0"} \
  bash "$ROOT/bench/gpu/lease.sh" 2>&1 | grep -v '^\[' | awk '!/^profile/ || ++n % 2'
echo "== cuda_backend_test with gemm_tma on"
LLM_CUDA_GEMM_TMA=1 timeout 100 "$B/tests/cuda_backend_test" 2>&1 | grep -E '^\[  (PASSED|FAILED)|Failure' | head -20
