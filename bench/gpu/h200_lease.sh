#!/usr/bin/env bash
# One lent-GPU call for issue #15's table (docs/cuda-notes.md), most wanted first, each part skipped once too
# little of DL is left: build; the backend test and v24's and v25's kernel tests; batch 1 with v24's O GEMV
# preload (160 KB, with 4-warp attention blocks) and v25's bulk prefix on the other one-row GEMVs (128 / 160 KB,
# and with v24's), between two default lines; the backend test with both on; the decode table (1/16/64/128/256
# + the mixed step), the same with the fp8 cache; offline -X inf -n 1500 at batch 256 with the bf16 and the fp8
# cache; the deterministic table.
#   LLM_SHARED_DIR (assets), DL (seconds, 480), OUT (/tmp/o), BUILD (build/gpu)
set -uo pipefail
CALL_DL=480
. "$(dirname "$0")/call_fns.sh"
call_build "cuda_backend_test cuda_gemv_test cuda_decode_bench loadgen" 220
timeout 40 $B/tests/cuda_gemv_test --gtest_filter="*Preload*:*BulkPrefix*" 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED|Failure|Expected|Which|preload|prefix" | head -10
timeout 60 $B/tests/cuda_backend_test 2>&1 | grep -E '^\[  (PASSED|FAILED)|FAILED|Failure' | head -6
bench() { DEADLINE=$(( $(left) + ${2:-0} )) STAGES=bench FILTER="$1" VARIANTS="$3" bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'; }
echo "== batch 1, v24 and v25 [$(elapsed)s]"
P=LLM_CUDA_GEMV_PRELOAD_KB; U=LLM_CUDA_GEMV_BULK_KB
bench 'BM_DecodeStep/1/' -170 "def;$P=160;$P=160 LLM_CUDA_ATTN_WARPS=4;$U=128;$U=160;$U=160 $P=160 LLM_CUDA_ATTN_WARPS=4;def"
env $P=160 $U=160 timeout 45 $B/tests/cuda_backend_test 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED" | sed "s/^/preload + bulk 160: /" | head -4
echo "== table [$(elapsed)s]"
bench 'BM_DecodeStep/(1|16|64|128|256)/|BM_MixedStep' -100 "def;LLM_BENCH_KV_DTYPE=fp8"
echo "== offline [$(elapsed)s]"
DEADLINE=$(( $(left) + 10 )) LGNEED=40 STAGES=loadgen \
  LGRUNS="offline|-X inf -n 1500;offline_fp8|-X inf -n 1500 --kv-cache-dtype fp8" bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
echo "== deterministic [$(elapsed)s]"
bench 'BM_DecodeStep/(1|16|64|128|256)/|BM_MixedStep' 20 "LLM_BENCH_DETERMINISTIC=1"
echo "[$(elapsed)s] end"
