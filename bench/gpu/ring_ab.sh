#!/usr/bin/env bash
# v20's A/B in one lent-GPU call (docs/cuda-notes.md), most wanted first so that a call cut short keeps it:
# build; the ring's kernel test; batch 256 with the ring (fp8, bf16); batch 1/16/64 with the ring, gemm_tma and
# carveout 100; batch-1 and -16 graph steps under a CUPTI kernel trace (LLM_BENCH_KERNEL_TRACE; read by
# bench/gpu/graph_trace.py, and back gzipped in OUT); cuBLAS alone at M = 128 / 256; ncu of the fp8 decode attention with and without
# the ring; gemm_tma's phases.
#   LLM_SHARED_DIR (assets), DL (seconds the whole script may take, 400), OUT (/tmp/o), BUILD (build/gpu)
set -uo pipefail
CALL_DL=400
. "$(dirname "$0")/call_fns.sh"
. bench/gpu/gemm_bench_fns.sh
call_build "cuda_attention_test cuda_decode_bench cuda_gemm_bench" 300
timeout 90 $B/tests/cuda_attention_test --gtest_filter='*Ring*:*BeforeTheWait*:*V2*:*SplitMerge*' 2>&1 | grep -E '^\[  (PASSED|FAILED)|OK \]|Failure|Expected|Which is|ring|error' | head -20
echo "== b256: bf16, fp8, the ring [$(elapsed)s]"
DEADLINE=$(( $(left) - 150 )) STAGES=bench FILTER='BM_DecodeStep/256/' \
  VARIANTS="LLM_BENCH_KV_DTYPE=fp8;LLM_BENCH_KV_DTYPE=fp8 LLM_CUDA_ATTN_RING=3;def;LLM_CUDA_ATTN_RING=3;LLM_BENCH_KV_DTYPE=fp8 LLM_CUDA_ATTN_RING=3 LLM_CUDA_ATTN_EARLY_KV=256;LLM_BENCH_KV_DTYPE=fp8 LLM_CUDA_ATTN_RING=2;LLM_BENCH_KV_DTYPE=fp8 LLM_CUDA_ATTN_RING=4" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
echo "== b1/16/64 [$(elapsed)s]"
DEADLINE=$(( $(left) - 80 )) STAGES=bench FILTER='BM_DecodeStep/(1|16|64)/' \
  VARIANTS="def;LLM_CUDA_ATTN_RING=3;LLM_CUDA_ATTN_EARLY_KV=0;LLM_CUDA_ATTN_RING=3 LLM_CUDA_ATTN_EARLY_KV=256;LLM_CUDA_GEMM_TMA=1;LLM_CUDA_CARVEOUT=100" \
  bash bench/gpu/lease.sh 2>&1 | grep -v 'done$'
[[ $(left) -gt 60 ]] && BUILD=$B OUT=$O BATCHES="1 16" bash bench/gpu/graph_trace.sh
if [[ $(left) -gt 25 ]]; then
  echo "== cuBLAS at M = 128 / 256 (shape 0 QKV, 1 O, 2 gate-up, 3 down)"
  GB_LIMIT=$(( $(left) - 5 )) gb "BM_Gemm/0/[0-3]/(128|256)/"
fi
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for rg in 0 3; do
  [[ $(left) -lt 35 || -z $NCU ]] && { echo "skip ncu fp8, ring $rg"; continue; }
  LLM_CUDA_ATTN_RING=$rg LLM_CUDA_GRAPHS=0 LLM_CUDA_GRAPHS_AT_LOAD=0 LLM_BENCH_KV_DTYPE=fp8 timeout $(( $(left) - 10 )) $NCU --clock-control none \
    -k regex:decode_attention -s 40 -c 1 --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section LaunchStats --section SchedulerStats \
    $B/engine/cuda_decode_bench --benchmark_filter='BM_DecodeStep/256/' --benchmark_min_time=0.01 > $O/ncu_fp8_$rg.txt 2>&1
  echo "ncu fp8, ring $rg: rc=$?"; grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Issue Slots Busy|No Eligible|Block Limit|Dynamic Shared" $O/ncu_fp8_$rg.txt | sed -E 's/ +/ /g' | head -16
done
if [[ $(left) -gt 25 ]]; then
  echo "== gemm_tma phases"
  GB_LIMIT=$(( $(left) - 5 )) ph
fi
echo "[$(elapsed)s] end"
