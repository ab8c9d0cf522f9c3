#!/usr/bin/env bash
# v24's and v25's A/B in one short lent-GPU call (docs/cuda-notes.md), most wanted first: build; the two kernels'
# bit tests (GemvPreloadGivesGemvUnitsBits, GemvBulkPrefixChangesNoBit); decode steps at batch 1 with v24's O GEMV
# preload (160 KB; with 4-warp attention blocks), v25's bulk prefix on the other one-row GEMVs (128 / 160 KB) and
# both, between two default lines; then, if time is left, the backend test with both on and batch 16 / 256
# (which neither touches) as a control.
#   LLM_SHARED_DIR (assets), DL (seconds the whole script may take, 330), OUT (/tmp/o), BUILD (build/gpu)
set -uo pipefail
CALL_DL=330
. "$(dirname "$0")/call_fns.sh"
call_build "cuda_gemv_test cuda_backend_test cuda_decode_bench" 200 2
timeout 40 $B/tests/cuda_gemv_test --gtest_filter="*Preload*:*BulkPrefix*" 2>&1 |
  grep -E "^\[  (PASSED|FAILED)|FAILED|Failure|Expected|Which|preload|prefix" | head -10
echo "== batch 1 [$(elapsed)s]"
P=LLM_CUDA_GEMV_PRELOAD_KB; U=LLM_CUDA_GEMV_BULK_KB
DEADLINE=$(( $(left) - 25 )) NEED=18 STAGES=bench FILTER='BM_DecodeStep/1/' \
  VARIANTS="def;$P=160;$U=160;$U=160 $P=160;$P=160 LLM_CUDA_ATTN_WARPS=4;$U=128;def" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
[[ $(left) -gt 25 ]] && env $P=160 $U=160 timeout 20 $B/tests/cuda_backend_test 2>&1 |
  grep -E "^\[  (PASSED|FAILED)|FAILED" | sed "s/^/preload + bulk 160: /" | head -4
[[ $(left) -gt 45 ]] && DEADLINE=$(left) STAGES=bench FILTER='BM_DecodeStep/(16|256)/' VARIANTS="def" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
echo "[$(elapsed)s] end"
