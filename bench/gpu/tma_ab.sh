#!/usr/bin/env bash
# gemm_tma's A/B in one lent-GPU call (docs/cuda-notes.md, v19), most wanted first so that a call cut short
# keeps it: build; gemm_tma's kernel tests; the decode step with each switch (lease.sh's bench stage); where a
# gemm_tma call's time goes (cuda_gemm_bench's BM_GemmTmaPhases, per-block timestamps); the GEMMs alone,
# cuBLAS / gemm_tma / gemv_mma side by side; then any EXTRA timings; the backend's tests with gemm_tma on.
#   LLM_SHARED_DIR (assets), BUILD (build/gpu)
#   VARIANTS  lease.sh's decode variants; default: the default kernels; gemm_tma; gemm_tma with its tensor-map
#             descriptors prefetched; gemm_tma with a 100 % shared-memory carveout on every kernel; that
#             carveout alone; gemm_tma from M = 1 with batch 1's norm and SwiGLU fusions off (every batch-1
#             GEMM through it) against the same fusions off without it (gemv_units)
#   FILTER    decode batches (default BM_DecodeStep/(1|4|16|64)/), DEADLINE (s for the decode stage, 250),
#             PROFILE (batches whose eager per-stage profile is printed, 16)
#   MS        GEMM rows for the GEMMs alone (default "4|16|64"); GB_LIMIT (s a cuda_gemm_bench run, 240)
#   EXTRA     any of: order (units in order), acc1 (one accumulator set), first (the first version's
#             consumer), rings (RINGS, default "4 8"), ncu (each GEMM alone under ncu: NCU_GEMMS path/shape/M)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$ROOT/build/gpu}
MS=${MS:-4|16|64}
EXTRA=" ${EXTRA:-} "
BUILD_TARGETS=${BUILD_TARGETS:-"cuda_gemm_test cuda_backend_test cuda_decode_bench cuda_gemm_bench"} STAGES=build \
  bash "$ROOT/bench/gpu/lease.sh" 2>&1 | tail -2
timeout 150 "$B/tests/cuda_gemm_test" --gtest_filter='*GemmTma*' 2>&1 | grep -E 'OK|FAIL|Failure|worst|differ' | head -20

echo "== decode step"
DEADLINE=${DEADLINE:-250} STAGES=bench PROFILE=${PROFILE:-16} FILTER=${FILTER:-'BM_DecodeStep/(1|4|16|64)/'} \
  VARIANTS=${VARIANTS:-"def;LLM_CUDA_GEMM_TMA=1;LLM_CUDA_GEMM_TMA=1 LLM_CUDA_GEMM_TMA_PREFETCH=1;LLM_CUDA_GEMM_TMA=1 LLM_CUDA_CARVEOUT=100;LLM_CUDA_CARVEOUT=100;LLM_CUDA_GEMM_TMA=1 LLM_CUDA_GEMM_TMA_MIN_M=1 LLM_CUDA_FUSE_NORM=0 LLM_CUDA_FUSE_SWIGLU=0;LLM_CUDA_FUSE_NORM=0 LLM_CUDA_FUSE_SWIGLU=0"} \
  bash "$ROOT/bench/gpu/lease.sh" 2>&1 | grep -v '^\[' | awk '!/^profile/ || ++n % 2'

. "$ROOT/bench/gpu/gemm_bench_fns.sh"
echo "== gemm_tma's phases (BM_GemmTmaPhases/shape/M; us from a block's entry, mean and max over blocks)"
ph
echo "== the same, descriptors prefetched"
LLM_CUDA_GEMM_TMA_PREFETCH=1 ph
echo "== GEMMs alone (path 0 cuBLAS, 1 gemm_tma, 2 gemv_mma / shape 0 QKV, 1 O, 2 gate-up, 3 down / M)"
gb "BM_Gemm/[0-2]/[0-3]/($MS)/"
echo "== gemm_tma, descriptors prefetched"
LLM_CUDA_GEMM_TMA_PREFETCH=1 gb "BM_Gemm/1/[0-3]/($MS)/"
if [[ $EXTRA == *" order "* ]]; then
  echo "== gemm_tma, each block's units in order"
  LLM_CUDA_GEMM_TMA_ORDER=0 gb "BM_Gemm/1/[0-3]/($MS)/"
fi
if [[ $EXTRA == *" acc1 "* ]]; then
  echo "== gemm_tma, one accumulator set"
  LLM_CUDA_GEMM_TMA_ACC=1 gb "BM_Gemm/1/[0-3]/($MS)/"
fi
if [[ $EXTRA == *" first "* ]]; then
  echo "== gemm_tma, one accumulator set, unpipelined (the first version)"
  LLM_CUDA_GEMM_TMA_ACC=1 LLM_CUDA_GEMM_TMA_PIPE=0 gb "BM_Gemm/1/[0-3]/($MS)/"
fi
if [[ $EXTRA == *" rings "* ]]; then
  for st in ${RINGS:-4 8}; do
    echo "== gemm_tma, a ring of $st stages"
    LLM_CUDA_GEMM_TMA_STAGES=$st gb "BM_Gemm/1/[0-3]/($MS)/"
  done
fi
if [[ $EXTRA == *" ncu "* ]] && command -v ncu >/dev/null; then
  # Each kernel alone from an idle GPU (ncu serializes): its own duration, DRAM bytes and shared-memory split.
  echo "== ncu: one kernel alone (path/shape/M: duration ns, DRAM bytes read, smem config bytes, grid)"
  for b in ${NCU_GEMMS:-0/1/16 1/1/16 0/2/16 1/2/16}; do
    timeout 60 ncu --clock-control none --print-kernel-base function --launch-skip 12 --launch-count 2 --csv --print-units base \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__shared_mem_config_size,launch__grid_size \
      "$B/engine/cuda_gemm_bench" --benchmark_filter="BM_Gemm/$b/" --benchmark_min_time=0.001 2>/dev/null |
      awk -F'","' -v b="$b" '/gpu__time_duration|dram__bytes_read|shared_mem_config|grid_size/ {
        gsub(/"/, "", $NF); k = $(NF-2); sub(/.*__/, "", k); printf "%s %s %s=%s\n", b, substr($5, 1, 40), k, $NF }' | head -8
  done
fi
echo "== cuda_backend_test with gemm_tma on"
LLM_CUDA_GEMM_TMA=1 timeout 100 "$B/tests/cuda_backend_test" 2>&1 | grep -E '^\[  (PASSED|FAILED)|Failure' | head -20
