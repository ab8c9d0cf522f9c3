#!/usr/bin/env bash
# v26's A/B in one short lent-GPU call (docs/cuda-notes.md), most wanted first: build; the attention kernels'
# prefill tests (the tensor-core kernel's float64 check among them) and the backend test with it on; the mixed
# 2,012-token step and one-prompt prefills of 64 / 256 / 1,024 tokens with the f32 tiled kernel and with the
# tensor-core one (LLM_CUDA_PREFILL_MMA=1), bf16 then fp8 cache, between two default lines, with the mixed step's
# eager stage profile; then, if time is left, the offline run (-X inf -n 1500, batch 256) with and without it.
#   LLM_SHARED_DIR (assets), DL (seconds the whole script may take, 420), OUT (/tmp/o), BUILD (build/gpu)
set -uo pipefail
CALL_DL=420
. "$(dirname "$0")/call_fns.sh"
call_build "step_inputs_test cuda_attention_prefill_test cuda_backend_test cuda_decode_bench loadgen" 230 2
$B/tests/step_inputs_test 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED|Failure" | head -4
timeout 120 $B/tests/cuda_attention_prefill_test --gtest_filter="*Prefill*" 2>&1 |
  grep -E "^\[  (PASSED|FAILED)|FAILED|Failure|Expected|Which|rel_err|tiled" | head -12
for w in 1 4; do
  LLM_CUDA_PREFILL_MMA=$w timeout 45 $B/tests/cuda_backend_test 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED" |
    sed "s/^/prefill mma $w: /" | head -4
done
echo "== mixed and prefill steps [$(elapsed)s]"
M=LLM_CUDA_PREFILL_MMA; F=LLM_BENCH_KV_DTYPE=fp8
DEADLINE=$(( $(left) - 90 )) NEED=25 STAGES=bench PROFILE=mixed FILTER='BM_MixedStep|BM_PrefillStep' \
  VARIANTS="def;$M=1;$M=4;$F;$F $M=4;$F $M=1;def" bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
echo "== offline [$(elapsed)s]"
DEADLINE=$(left) LGNEED=40 STAGES=loadgen LGRUNS="offline|-X inf -n 1500;offline_mma4@$M=4|-X inf -n 1500;offline_mma1@$M=1|-X inf -n 1500" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
echo "[$(elapsed)s] end"
