#!/usr/bin/env bash
# The CUDA backend's checks and A/B timings sized for one lent-GPU call (run.sh runs every stage and takes far
# longer): run.sh's build, check and fp8 stages as asked, then this script's own two, each run skipped once too
# little of DEADLINE seconds is left, so the output comes back before the call's limit.
#
#   bench/gpu/lease.sh                 STAGES (build check bench)  DEADLINE (560 s from the start)
#     build, check, fp8   run.sh's stages of those names (same BUILD, OUT and LLM_SHARED_DIR); check under a
#                         timeout of what is left
#     bench    cuda_decode_bench once per VARIANTS entry ("def;LLM_CUDA_X=1;LLM_BENCH_KV_DTYPE=fp8 LLM_CUDA_Y=8":
#              ';' between variants, ' ' between one variant's variables, "def" for none), FILTER (the
#              benchmark regex, default BM_DecodeStep/(1|16|64|256)/): one line each, step ms and floor / step;
#              PROFILE ("16|64": batch sizes; "mixed": the mixed step) adds the eager per-stage profile lines of those; a variant
#              starts only with NEED seconds (45) of DEADLINE left
#     loadgen  LGRUNS ("name|loadgen args;name@ENV=V,ENV2=W|args"; default offline|-X inf -n 1500) against
#              dummy:llama-2-7b at batch 256 on alpaca_200, TTFT / TPOT / ITL lines of each
#   LLM_SHARED_DIR (assets; default <repo>/../shared), BUILD (<repo>/build/gpu), OUT (/tmp/lease), CUDA_ARCH (90a)
set -uo pipefail
T0=$(date +%s)
DEADLINE=${DEADLINE:-560}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$ROOT/build/gpu}
SH=${LLM_SHARED_DIR:-$ROOT/../shared}
export LLM_SHARED_DIR=$SH
export BUILD=$B OUT=${OUT:-/tmp/lease}
O=$OUT
mkdir -p "$O"
left() { echo $((DEADLINE - ($(date +%s) - T0))); }
log() { echo "[$(($(date +%s) - T0))s] $*"; }
has() { [[ " ${STAGES:-build check bench} " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader

for stage in build check fp8; do
  has $stage || continue
  [[ $(left) -lt 30 ]] && { log "deadline: skipped run.sh $stage"; continue; }
  timeout "$(left)" bash "$ROOT/bench/gpu/run.sh" $stage
  rc=$?
  log "run.sh $stage exit $rc"
  [[ $stage == build && $rc != 0 ]] && exit 1
done

if has bench; then
  IFS=';' read -ra VS <<<"${VARIANTS:-def}"
  for v in "${VS[@]}"; do
    [[ $(left) -lt ${NEED:-45} ]] && { log "deadline: skipped $v"; continue; }
    e=()
    [[ $v != def ]] && read -ra e <<<"$v"
    env "${e[@]}" "$B/engine/cuda_decode_bench" --benchmark_filter="${FILTER:-BM_DecodeStep/(1|16|64|256)/}" \
      --benchmark_out="$O/bench.json" --benchmark_out_format=json >"$O/bench.log" 2>&1
    rc=$?
    python3 - "$O/bench.json" "$v" "$rc" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print(sys.argv[2], "rc", sys.argv[3], "no json:", e)
    sys.exit()
cells = []
for b in d["benchmarks"]:
    n = b["name"].split("/")
    floor = f'({100 * b["floor_ms"] / b["real_time"]:.0f}%)' if "floor_ms" in b else ""
    cells.append(f'{n[0].replace("BM_", "")}{"/" + n[1] if n[1][0].isdigit() else ""}={b["real_time"]:.3f}{floor}')
print(f'{sys.argv[2]:<58} rc={sys.argv[3]} ' + " ".join(cells))
EOF
    [[ $rc != 0 ]] && tail -5 "$O/bench.log"
    [[ -n ${PROFILE:-} ]] && grep -E "^profile batch (${PROFILE}) |^profile (${PROFILE}) step" "$O/bench.log"
  done
fi

if has loadgen; then
  LG=$B/loadgen/loadgen
  c=(--dataset "$SH/datasets/alpaca_200.json" --tokenizer "$SH/models/llama2-tokenizer/tokenizer.model" --model dummy:llama-2-7b --backend cuda
     --batch-size 256 --quiet)
  IFS=';' read -ra RS <<<"${LGRUNS:-offline|-X inf -n 1500}"
  for r in "${RS[@]}"; do
    [[ $(left) -lt ${LGNEED:-60} ]] && { log "deadline: skipped $r"; continue; }
    head=${r%%|*}
    args=${r#*|}
    name=${head%%@*}
    envs=()
    [[ $head == *@* ]] && IFS=',' read -ra envs <<<"${head#*@}"
    read -ra a <<<"$args"
    env "${envs[@]}" "$LG" "${a[@]}" "${c[@]}" --out "$O/lg_$name" >"$O/lg_$name.log" 2>&1
    log "loadgen $r rc=$?"
    grep -E "Output token throughput|Exec Time|TTFT|TPOT|ITL|Verdict" "$O/lg_$name.log" | head -14
  done
fi
log "done"
