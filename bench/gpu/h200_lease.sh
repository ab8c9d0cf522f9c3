#!/usr/bin/env bash
# One lent-GPU call for issue #15's table (docs/cuda-notes.md), most wanted first, each part skipped once too
# little of DL is left: build; the kernel checks not yet run on a GPU (v26's tensor-core prefill against
# float64 and its warp counts' bits, v24's and v25's bit tests) and the backend test with v27 on; the decode table
# (1/16/64/128/256, the mixed step, a 1,024-token prefill) with the bf16 and the fp8 cache; v27 and v26
# (LLM_CUDA_PREFILL_MMA=4 / 1) on the mixed step and the prefills, with the mixed step's eager profile; batch 1
# with v25's bulk prefix (160 KB) and v24's O preload between default lines (the H100 lost with both; the H200
# needs more bytes in flight an SM); offline
# -X inf -n 1500 at batch 256 with the bf16 cache, with v27, and with the fp8 cache; the deterministic table.
#   LLM_SHARED_DIR (assets), DL (seconds, 480), OUT (/tmp/o), BUILD (build/gpu)
set -uo pipefail
CALL_DL=480
. "$(dirname "$0")/call_fns.sh"
call_build "cuda_backend_test cuda_gemv_test cuda_attention_prefill_test cuda_decode_bench loadgen" 230
timeout 120 $B/tests/cuda_attention_prefill_test --gtest_filter="*Prefill*" 2>&1 |
  grep -E "^\[  (PASSED|FAILED)|FAILED|Failure|Expected|Which|tiled" | head -10
timeout 40 $B/tests/cuda_gemv_test --gtest_filter="*Preload*:*BulkPrefix*" 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED|Failure|Expected|Which|preload|prefix" | head -10
LLM_CUDA_PREFILL_MMA=4 timeout 60 $B/tests/cuda_backend_test 2>&1 | grep -E '^\[  (PASSED|FAILED)|FAILED|Failure' |
  sed "s/^/prefill mma 4: /" | head -6
bench() { DEADLINE=$(( $(left) + ${2:-0} )) STAGES=bench FILTER="$1" VARIANTS="$3" bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'; }
echo "== table [$(elapsed)s]"
PROFILE=mixed bench 'BM_DecodeStep/(1|16|64|128|256)/|BM_MixedStep|BM_PrefillStep/1024' -200 "def;LLM_BENCH_KV_DTYPE=fp8"
echo "== v26, v27 [$(elapsed)s]"
M=LLM_CUDA_PREFILL_MMA
PROFILE=mixed bench 'BM_MixedStep|BM_PrefillStep' -170 "$M=4;$M=1;$M=4 LLM_BENCH_KV_DTYPE=fp8"
echo "== batch 1, v25 and v24 [$(elapsed)s]"
P=LLM_CUDA_GEMV_PRELOAD_KB; U=LLM_CUDA_GEMV_BULK_KB
bench 'BM_DecodeStep/1/' -130 "def;$U=160;$P=160;def"
echo "== offline [$(elapsed)s]"
DEADLINE=$(( $(left) - 15 )) LGNEED=40 STAGES=loadgen \
  LGRUNS="offline|-X inf -n 1500;offline_mma4@$M=4|-X inf -n 1500;offline_fp8|-X inf -n 1500 --kv-cache-dtype fp8" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
echo "== deterministic [$(elapsed)s]"
bench 'BM_DecodeStep/(1|16|64|128|256)/|BM_MixedStep' 20 "LLM_BENCH_DETERMINISTIC=1"
echo "[$(elapsed)s] end"
