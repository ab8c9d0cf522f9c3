#!/usr/bin/env bash
# The CUDA backend's checks and A/B timings sized for one lent-GPU call (run.sh does everything and takes far
# longer): stages in order, each skipped once less than its share of DEADLINE seconds is left, so the output
# comes back before the call's limit. One line per bench variant: step ms and floor / step at each batch.
#
#   bench/gpu/lease.sh                 STAGES (build tests bench)  DEADLINE (560 s from the start)
#     build    cmake + ninja of the CUDA tests, cuda_decode_bench, loadgen and acc_allclose into BUILD
#     tests    the five CUDA test binaries (each under a 200 s timeout), their pass/fail lines
#     bench    cuda_decode_bench once per VARIANTS entry ("def;LLM_CUDA_X=1;LLM_BENCH_KV_DTYPE=fp8 LLM_CUDA_Y=8":
#              ';' between variants, ' ' between one variant's variables, "def" for none), FILTER (the
#              benchmark regex, default BM_DecodeStep/(1|16|64|256)/)
#     fp8acc   bf16 vs fp8 KV cache, teacher-forced on tiny-llama and stories260K (acc_allclose top-1, KL);
#              FP8_7B=1 adds dummy:llama-2-7b fed its own bf16 run's tokens, FP8_SMALL=0 drops the two
#     loadgen  LGRUNS ("name|loadgen args;name@ENV=V,ENV2=W|args"; default offline|-X inf -n 1500) against
#              dummy:llama-2-7b at batch 256 on alpaca_200, TTFT / TPOT / ITL lines of each
#   LLM_SHARED_DIR (assets: datasets/alpaca_200.json, models/, references/; default <repo>/../shared)
#   BUILD (<repo>/build/gpu), OUT (/tmp/lease), CUDA_ARCH (90a)
set -uo pipefail
T0=$(date +%s)
DEADLINE=${DEADLINE:-560}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$ROOT/build/gpu}
SH=${LLM_SHARED_DIR:-$ROOT/../shared}
export LLM_SHARED_DIR=$SH
O=${OUT:-/tmp/lease}
mkdir -p "$O"
left() { echo $((DEADLINE - ($(date +%s) - T0))); }
log() { echo "[$(($(date +%s) - T0))s] $*"; }
has() { [[ " ${STAGES:-build tests bench} " == *" $1 "* ]]; }
TOK=$SH/models/llama2-tokenizer/tokenizer.model
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader

if has build; then
  if [[ ! -f $B/build.ninja ]]; then
    cmake -S "$ROOT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLM_ENABLE_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a}" -DLLM_SHARED_DIR="$SH" >"$O/cmake.log" 2>&1 \
      || { tail -30 "$O/cmake.log"; exit 1; }
  fi
  cmake --build "$B" --target cuda_layer_kernels_test cuda_attention_test cuda_gemm_test cuda_backend_test \
    cuda_batch_invariance_test cuda_decode_bench loadgen acc_allclose -j"$(nproc)" >"$O/build.log" 2>&1 \
    || { grep -E "error" "$O/build.log" | head -30; exit 1; }
  log "build ok"
fi

if has tests; then
  for t in cuda_layer_kernels_test cuda_attention_test cuda_gemm_test cuda_batch_invariance_test cuda_backend_test; do
    timeout 200 "$B/tests/$t" >"$O/$t.log" 2>&1
    rc=$?
    log "$t rc=$rc $(grep -E '^\[  PASSED|^\[  FAILED|SKIPPED \] [0-9]' "$O/$t.log" | tr '\n' ' ')"
    grep -E "FAILED \]|Failure|Expected|Which is|actual" "$O/$t.log" | head -20
  done
fi

if has bench; then
  IFS=';' read -ra VS <<<"${VARIANTS:-def}"
  for v in "${VS[@]}"; do
    [[ $(left) -lt 45 ]] && { log "deadline: skipped $v"; continue; }
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
  done
fi

if has fp8acc; then
  LG=$B/loadgen/loadgen
  pair() {  # name, loadgen options...: the same replay with the bf16 and the fp8 cache, then acc_allclose
    local name=$1
    shift
    for kv in bf16 fp8; do
      local k=()
      [[ $kv == fp8 ]] && k=(--kv-cache-dtype fp8)
      "$LG" --backend cuda --quiet "$@" "${k[@]}" --dump-logits "$O/fa_${name}_$kv.h5" --out "$O/lg_fa_${name}_$kv" \
        >>"$O/fa.log" 2>&1
      log "$name $kv rc=$?"
    done
    "$B/accuracy/acc_allclose" "$O/fa_${name}_bf16.h5" "$O/fa_${name}_fp8.h5" --rtol 2e-2 --atol 2e-2 \
      --json "$O/fa_$name.json" >"$O/fa_$name.txt" 2>&1
    python3 - "$O/fa_$name.json" "$name" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["requests"]
steps = sum(x["steps"] for x in r)
agree = sum(x["top1_agreement"] * x["steps"] for x in r)
print(f'{sys.argv[2]}: {len(r)} requests, {steps} steps, top-1 agreement {agree / steps:.4f}, '
      f'max KL {max(x["max_kl"] for x in r):.4g}, max |diff| {max(x["max_abs"] for x in r):.3f}')
EOF
  }
  if [[ ${FP8_7B:-0} == 1 ]]; then
    "$LG" --backend cuda --quiet --model dummy:llama-2-7b --tokenizer "$TOK" --dataset "$SH/datasets/alpaca_200.json" \
      -n 32 -X inf --output-len 64 --dump-logits "$O/gen7b.h5" --out "$O/lg_gen7b" >>"$O/fa.log" 2>&1
    log "7b bf16 generation rc=$?"
    pair 7b --reference "$O/gen7b.h5" --model dummy:llama-2-7b --tokenizer "$TOK"
    rm -f "$O"/*7b*.h5  # too large to bring back
  fi
  if [[ ${FP8_SMALL:-1} == 1 ]]; then
    pair tiny-llama --reference "$SH/references/tiny-llama_visible.h5" --model "$SH/models/tiny-llama" --tokenizer "$TOK"
    pair stories260K --reference "$SH/references/stories260K_visible.h5" \
      --model "$SH/models/stories260K/stories260K.bin"
  fi
fi

if has loadgen; then
  LG=$B/loadgen/loadgen
  c=(--dataset "$SH/datasets/alpaca_200.json" --tokenizer "$TOK" --model dummy:llama-2-7b --backend cuda
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
