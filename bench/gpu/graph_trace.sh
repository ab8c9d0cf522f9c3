#!/usr/bin/env bash
# Decode steps as CUDA graphs under cuda_decode_bench's own CUPTI kernel trace (LLM_BENCH_KERNEL_TRACE; nsys is
# not on the lent machines): for each batch in BATCHES, each kernel's duration and the gap before it inside the
# graph, summed per kernel (graph_trace.py), and the traces gzipped in OUT. The bench binary must be built
# (lease.sh's build stage with BUILD_TARGETS=cuda_decode_bench).
#   BATCHES ("1 16"), STEPS (30 traced steps a batch), BUILD (build/gpu), OUT (/tmp/o), TIMEOUT (60 s)
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${BUILD:-$PWD/build/gpu}; O=${OUT:-/tmp/o}; mkdir -p "$O"
BATCHES=${BATCHES:-1 16}
filter="BM_DecodeStep/($(echo $BATCHES | tr ' ' '|'))/"
LLM_BENCH_KERNEL_TRACE=$O/trace LLM_BENCH_TRACE_STEPS=${STEPS:-30} timeout ${TIMEOUT:-60} "$B/engine/cuda_decode_bench" \
  --benchmark_filter="$filter" --benchmark_min_time=0.05 2>&1 | grep -E 'kernel trace|CUPTI|error|DecodeStep/'
for b in $BATCHES; do
  [[ -f $O/trace_b$b.csv ]] || { echo "batch $b: no trace"; continue; }
  echo "== batch $b"
  python3 bench/gpu/graph_trace.py "$O/trace_b$b.csv" 2>&1 | head -48
  gzip -f "$O/trace_b$b.csv"
done
