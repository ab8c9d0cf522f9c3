#!/usr/bin/env bash
# One lent-H200 call for issue #15's table and v23's A/B (docs/cuda-notes.md), most wanted first, each part
# skipped once too little of DL is left: build; the GEMV register-cap bit test and the backend test with a
# cap on; batch-1 steps with the one-row GEMVs held to 56 (with 4-warp attention) or 48 registers, alternated
# with the default; the decode table (1/16/64/128/256 + the mixed step), the same with the fp8 cache;
# offline -X inf -n 1500 at batch 256 with the bf16 and the fp8 cache; the deterministic table.
#   LLM_SHARED_DIR (assets), DL (seconds, 500), OUT (/tmp/o), BUILD (build/gpu)
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s); left() { echo $(( ${DL:-500} - ($(date +%s) - T0) )); }
export LLM_SHARED_DIR=${LLM_SHARED_DIR:-$PWD/../shared}
B=${BUILD:-$PWD/build/gpu}; O=${OUT:-/tmp/o}; mkdir -p $O
BUILD_TARGETS="cuda_gemm_test cuda_backend_test cuda_decode_bench loadgen" STAGES=build \
  DEADLINE=240 bash bench/gpu/lease.sh 2>&1 | tail -3
echo "[$(( $(date +%s) - T0 ))s] built"
timeout 60 $B/tests/cuda_gemm_test --gtest_filter='*MaxRegs*' 2>&1 |
  grep -E '^\[  (PASSED|FAILED)|OK \]|Failure|Expected|Which is|error' | head -8
LLM_CUDA_GEMV_MAX_REGS=48 timeout 60 $B/tests/cuda_backend_test 2>&1 | grep -E '^\[  (PASSED|FAILED)|FAILED|Failure' | head -6
bench() { DEADLINE=$(( $(left) + ${2:-0} )) STAGES=bench FILTER="$1" VARIANTS="$3" bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'; }
echo "== batch 1 [$(( $(date +%s) - T0 ))s]"
R56="LLM_CUDA_GEMV_MAX_REGS=56 LLM_CUDA_ATTN_WARPS=4"; R48="LLM_CUDA_GEMV_MAX_REGS=48"
bench 'BM_DecodeStep/1/' -150 "def;$R56;$R48;def;$R56;$R48"
echo "== table [$(( $(date +%s) - T0 ))s]"
bench 'BM_DecodeStep/(1|16|64|128|256)/|BM_MixedStep' -100 "def;LLM_BENCH_KV_DTYPE=fp8"
echo "== offline [$(( $(date +%s) - T0 ))s]"
DEADLINE=$(( $(left) + 10 )) LGNEED=40 STAGES=loadgen \
  LGRUNS="offline|-X inf -n 1500;offline_fp8|-X inf -n 1500 --kv-cache-dtype fp8" bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
echo "== deterministic [$(( $(date +%s) - T0 ))s]"
bench 'BM_DecodeStep/(1|16|64|128|256)/|BM_MixedStep' 20 "LLM_BENCH_DETERMINISTIC=1"
echo "[$(( $(date +%s) - T0 ))s] end"
