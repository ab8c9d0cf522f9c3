# Sourced by tma_ab.sh and ring_ab.sh: cuda_gemm_bench's two kinds of run, one line per benchmark (name, time,
# counters), under a timeout of GB_LIMIT seconds (240). Needs B (the build folder).
#   gb REGEX   BM_Gemm rows (path/shape/M) matching REGEX
#   ph         BM_GemmTmaPhases (gemm_tma's per-block phases), counters untabulated
gb() { timeout ${GB_LIMIT:-240} "$B/engine/cuda_gemm_bench" --benchmark_filter="$1" --benchmark_min_time=0.05 2>&1 |
       grep -E '^BM_' | sed -E 's/ +/ /g; s#/manual_time##' | cut -d' ' -f1,2,7-; }
ph() { timeout ${GB_LIMIT:-240} "$B/engine/cuda_gemm_bench" --benchmark_filter="BM_GemmTmaPhases/" --benchmark_min_time=0.05 \
       --benchmark_counters_tabular=false 2>&1 | grep -E "^BM_" | sed -E "s/ +/ /g; s#/manual_time##" | cut -d" " -f1,2,7-; }
