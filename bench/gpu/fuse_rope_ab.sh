#!/usr/bin/env bash
# v22's A/B in one lent-GPU call (docs/cuda-notes.md), most wanted first: build; the fused RoPE's kernel test
# (and the ring's, whose refusal check is new); the backend and batch-invariance tests with it on; decode steps
# at batch 1/16/64/256 with and without it, alternated twice; then the batch-1 graph traced with and without it
# (graph_trace.sh).
#   LLM_SHARED_DIR (assets), DL (seconds the whole script may take, 380), OUT (/tmp/o), BUILD (build/gpu)
set -uo pipefail
CALL_DL=380
. "$(dirname "$0")/call_fns.sh"
call_build "cuda_attention_test cuda_backend_test cuda_batch_invariance_test cuda_decode_bench" 220 2
timeout 90 $B/tests/cuda_attention_test --gtest_filter='*FusedRope*:*Ring*:*BeforeTheWait*' 2>&1 |
  grep -E '^\[  (PASSED|FAILED)|OK \]|Failure|Expected|Which is|error' | head -12
for t in cuda_backend_test cuda_batch_invariance_test; do
  LLM_CUDA_FUSE_ROPE_ATTN=1 timeout 60 $B/tests/$t 2>&1 | grep -E '^\[  (PASSED|FAILED)|FAILED|Failure' | head -6
done
echo "== decode steps [$(elapsed)s]"
DEADLINE=$(( $(left) - 60 )) NEED=20 STAGES=bench FILTER='BM_DecodeStep/(1|16|64|256)/' \
  VARIANTS="def;LLM_CUDA_FUSE_ROPE_ATTN=1;def;LLM_CUDA_FUSE_ROPE_ATTN=1" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
[[ $(left) -gt 50 ]] && BUILD=$B OUT=$O BATCHES=1 TIMEOUT=25 bash bench/gpu/graph_trace.sh
[[ $(left) -gt 30 ]] && LLM_CUDA_FUSE_ROPE_ATTN=1 BUILD=$B OUT=$O/fused BATCHES=1 TIMEOUT=25 bash bench/gpu/graph_trace.sh
echo "[$(elapsed)s] end"
