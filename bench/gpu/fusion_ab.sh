#!/usr/bin/env bash
# A/B of the batch-1 fused GEMVs (docs/cuda-notes.md, v11) in one call: cuda_decode_bench's decode steps at
# the given batches for each variant of the two switches, variants alternating, ROUNDS rounds; then one line
# per (variant, batch) with the median-of-repetitions step time of every round.
#
#   bench/gpu/fusion_ab.sh            BUILD (build/gpu), OUT ($BUILD/out), ROUNDS (2), BATCHES (1|4|16|64)
#   VARIANTS: names out of none swiglu norm both (default: all four; "none" = both fusions off); a "+u" suffix
#   (none+u, both+u) sets LLM_CUDA_GEMV_UNITS=1 (the plain GEMVs in the fused kernels' layout, the default
#   since v11), no suffix LLM_CUDA_GEMV_UNITS=0 (gemv.cu's one-row-per-warp kernel); a further "+mN" suffix
#   (both+u+m1, both+u+m4) sets LLM_CUDA_GEMV_MAX_M=N (v12: the most rows that take gemv_units; 1 = cuBLAS
#   from M = 2, the path before v12), no such suffix the default; "+c0" sets LLM_CUDA_GEMV_INT_CVT=0 (v12: the
#   GEMVs' bf16 -> float conversion through cvt.f32.bf16, as before v12); so both+u+m1+c0 is v11's default
#   v13's gemv_mma: "+g" sets LLM_CUDA_GEMV_MMA=1 (the tensor-core unit-layout GEMV for M = 3..16), "+g0"
#   LLM_CUDA_GEMV_MMA=0, "+lN" / "+hN" LLM_CUDA_GEMV_MMA_MIN_M / _MAX_M = N, "+x0" LLM_CUDA_GEMV_MMA_XSMEM=0
#   (x read through L1 instead of shared memory), "+p0" LLM_CUDA_GEMV_MMA_PP=0 (the first version's
#   single-set weight pipeline); so both+u+g0 is v12's default, both+u+g+l1 gemv_mma at M = 1..16
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/gpu}
OUT=${OUT:-$BUILD/out}
ROUNDS=${ROUNDS:-2}
BATCHES=${BATCHES:-1|4|16|64}
VARIANTS=${VARIANTS:-none swiglu norm both}
mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  for v in $VARIANTS; do
    un=0 mm=()
    IFS=+ read -ra parts <<<"$v"
    for p in "${parts[@]:1}"; do
      case $p in
        u) un=1 ;; m[0-9]*) mm+=(LLM_CUDA_GEMV_MAX_M="${p#m}") ;; c0) mm+=(LLM_CUDA_GEMV_INT_CVT=0) ;;
        g) mm+=(LLM_CUDA_GEMV_MMA=1) ;; g0) mm+=(LLM_CUDA_GEMV_MMA=0) ;; x0) mm+=(LLM_CUDA_GEMV_MMA_XSMEM=0) ;;
        p0) mm+=(LLM_CUDA_GEMV_MMA_PP=0) ;;
        l[0-9]*) mm+=(LLM_CUDA_GEMV_MMA_MIN_M="${p#l}") ;; h[0-9]*) mm+=(LLM_CUDA_GEMV_MMA_MAX_M="${p#h}") ;;
        *) echo "unknown suffix +$p in $v"; exit 2 ;;
      esac
    done
    case ${v%%+*} in
      none) sw=0 nm=0 ;; swiglu) sw=1 nm=0 ;; norm) sw=0 nm=1 ;; both) sw=1 nm=1 ;;
      *) echo "unknown variant $v"; exit 2 ;;
    esac
    env "${mm[@]}" LLM_CUDA_GEMV_UNITS=$un LLM_CUDA_FUSE_SWIGLU=$sw LLM_CUDA_FUSE_NORM=$nm "$BUILD/engine/cuda_decode_bench" \
      --benchmark_filter="BM_DecodeStep/($BATCHES)/" --benchmark_repetitions="${REPS:-3}" \
      --benchmark_out="$OUT/ab_${v}_r$r.json" --benchmark_out_format=json >"$OUT/ab_${v}_r$r.log" 2>&1
    echo "[$(date -u +%H:%M:%S)] $v round $r exit $?"
  done
done
python3 - "$OUT" "$ROUNDS" $VARIANTS <<'PYEOF'
import json, sys, statistics, os
out, rounds, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for v in variants:
    for r in range(1, rounds + 1):
        p = os.path.join(out, f"ab_{v}_r{r}.json")
        if not os.path.exists(p):
            continue
        for b in json.load(open(p))["benchmarks"]:
            if b.get("run_type") != "iteration" or "error_occurred" in b:
                continue
            batch = int(b["batch"])
            rows.setdefault((v, batch), {}).setdefault(r, []).append(b["real_time"])
batches = sorted({k[1] for k in rows})
print("variant   batch   " + "   ".join(f"round{r} ms" for r in range(1, rounds + 1)))
for batch in batches:
    for v in variants:
        per = rows.get((v, batch), {})
        cells = [f"{statistics.median(per[r]):9.3f}" if r in per else "      n/a" for r in range(1, rounds + 1)]
        print(f"{v:8s} {batch:6d}   " + "   ".join(cells))
PYEOF
# The eager per-stage profile of each batch for each variant (first round; PROFILE_BATCHES, default 1).
for b in ${PROFILE_BATCHES:-1}; do
  for v in $VARIANTS; do echo "$v: $(grep -h "profile batch $b " "$OUT/ab_${v}_r1.log")"; done
done
