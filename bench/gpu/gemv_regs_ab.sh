#!/usr/bin/env bash
# v23's A/B in one lent-GPU call (docs/cuda-notes.md): build; the GEMV bit test with the register caps; the
# backend test with a cap on; batch-1 decode steps with the one-row GEMVs held to 56 registers (with 4-warp
# attention blocks, the size that fits beside one) or 48 (the default 8-warp block fits), each cap and the 4-warp
# attention alone as controls, alternated twice; the default at 16 / 64 / 256 once (v22's fused RoPE is now on up
# to 16 rows); then batch 1 traced with the 48 cap.
#   LLM_SHARED_DIR (assets), DL (seconds the whole script may take, 280), OUT (/tmp/o), BUILD (build/gpu)
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s); left() { echo $(( ${DL:-280} - ($(date +%s) - T0) )); }
export LLM_SHARED_DIR=${LLM_SHARED_DIR:-$PWD/../shared}
B=${BUILD:-$PWD/build/gpu}; O=${OUT:-/tmp/o}; mkdir -p $O
BUILD_TARGETS="cuda_gemm_test cuda_backend_test cuda_decode_bench" STAGES=build \
  DEADLINE=200 bash bench/gpu/lease.sh 2>&1 | tail -2
echo "[$(( $(date +%s) - T0 ))s] built"
timeout 60 $B/tests/cuda_gemm_test --gtest_filter='*MaxRegs*' 2>&1 |
  grep -E '^\[  (PASSED|FAILED)|OK \]|Failure|Expected|Which is|error' | head -8
LLM_CUDA_GEMV_MAX_REGS=48 timeout 60 $B/tests/cuda_backend_test 2>&1 | grep -E '^\[  (PASSED|FAILED)|FAILED|Failure' | head -6
echo "== decode steps [$(( $(date +%s) - T0 ))s]"
R56="LLM_CUDA_GEMV_MAX_REGS=56 LLM_CUDA_ATTN_WARPS=4"; R48="LLM_CUDA_GEMV_MAX_REGS=48"
DEADLINE=$(( $(left) - 20 )) STAGES=bench FILTER='BM_DecodeStep/1/' \
  VARIANTS="def;$R56;$R48;LLM_CUDA_ATTN_WARPS=4;LLM_CUDA_GEMV_MAX_REGS=56;def;$R56;$R48" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
DEADLINE=$(( $(left) + 5 )) STAGES=bench FILTER='BM_DecodeStep/(16|64|256)/' VARIANTS="def" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
[[ $(left) -gt 28 ]] && LLM_CUDA_GEMV_MAX_REGS=48 BUILD=$B OUT=$O/r48 BATCHES=1 TIMEOUT=25 bash bench/gpu/graph_trace.sh
echo "[$(( $(date +%s) - T0 ))s] end"
