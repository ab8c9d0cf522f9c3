#!/usr/bin/env bash
# The CUDA backend's device script: builds with -DCMAKE_CUDA_ARCHITECTURES=90a, runs the kernel and
# whole-model checks, then the benchmarks, and prints one table. Usable on any machine with an NVIDIA GPU
# (sm_90a build: H100/H200; set CUDA_ARCH=native or e.g. 80 elsewhere).
#
#   bench/gpu/run.sh [stage...]      stages: build check accuracy fp8 bench loadgen prefix peer table
#                                    (default: all)
#
# Environment:
#   LLM_SHARED_DIR   shared assets (datasets/, models/): default <repo>/../shared
#   BUILD            build folder (default <repo>/build/gpu);  OUT: logs and results (default $BUILD/out)
#   LLM_CUDA_TEST_7B=1   also compare dummy:llama-2-7b with the CPU backend (~45 GB host memory)
#   BUILD_TARGETS    the build stage's targets instead of every test, bench and end-to-end tool
#   LOADGEN_N (1500)  LOADGEN_BATCH (256)  ONLINE_T (300; 0 skips the online run)
#   ABLATE (1; 0 skips the batch-1 runs without GEMV / without graphs)  ABLATE_V18 (1; 0 skips v18's switches)
#   PREFIX_MODEL (dummy:llama-2-7b)  PREFIX_RATE (32)  PREFIX_N (768)  PREFIX_TAG (names the output folders)
#   PEER_BATCHES (0 = all 24 static batches of 64; K = time the first K only)  PEER_TIMEOUT (s, 3600)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/gpu}
OUT=${OUT:-$BUILD/out}
SHARED=${LLM_SHARED_DIR:-$ROOT/../shared}
export LLM_SHARED_DIR=$SHARED
mkdir -p "$OUT"
STAGES=${*:-build check accuracy fp8 bench loadgen prefix peer table}
DATASET=$SHARED/datasets/alpaca_200.json
TOKENIZER=$SHARED/models/llama2-tokenizer/tokenizer.model
N=${LOADGEN_N:-1500}
BATCH=${LOADGEN_BATCH:-256}
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

if has build; then
  log "build: cmake (CUDA arch ${CUDA_ARCH:-90a}) + ninja"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLM_ENABLE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a}" -DLLM_SHARED_DIR="$SHARED" >"$OUT/build.log" 2>&1 \
    || { log "cmake failed"; tail -30 "$OUT/build.log"; exit 1; }
  targets=${BUILD_TARGETS:-"step_inputs_test cuda_layer_kernels_test cuda_attention_test cuda_attention_prefill_test cuda_gemm_test cuda_gemv_test cuda_backend_test cuda_batch_invariance_test cuda_decode_bench cuda_gemm_bench"}
  cmake --build "$BUILD" --target $targets -j"$(nproc)" >>"$OUT/build.log" 2>&1 \
    || { log "build failed"; grep -E "error|Error" "$OUT/build.log" | head -40; exit 1; }
  # The end-to-end tools are other modules: a failure there skips the stages that need them.
  # (None when BUILD_TARGETS names the targets: a call that needs only those.)
  for t in ${BUILD_TARGETS:-loadgen acc_allclose bf16_error_budget}; do
    [[ -n ${BUILD_TARGETS:-} ]] && break
    cmake --build "$BUILD" --target $t -j"$(nproc)" >>"$OUT/build.log" 2>&1 && targets+=" $t" \
      || log "could not build $t (stages that need it are skipped)"
  done
  log "build ok: $targets"
fi

if has check; then
  for t in step_inputs_test cuda_layer_kernels_test cuda_attention_test cuda_attention_prefill_test cuda_gemm_test cuda_gemv_test cuda_backend_test cuda_batch_invariance_test; do
    log "check: $t"
    "$BUILD/tests/$t" --gtest_brief=0 >"$OUT/$t.log" 2>&1
    rc=$?
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |OK \]|FAILED \]|cuda vs cpu|rel err vs|Failure|Expected|Which is|rel_err|error|batch 1 vs" "$OUT/$t.log" | head -60
    log "$t exit $rc"
  done
fi

if has accuracy; then
  # Teacher-forced replays of the shared tiny-llama reference's requests (same prompts, same forced tokens):
  #   CPU backend (f32) = the baseline; CUDA f32 must match it within acc_allclose 1e-4; CUDA bf16 is scored
  #   at the bf16 tolerance 2e-2, next to what bf16 itself costs on this model (bf16_error_budget, float64).
  # Then all three against the file itself, with transformers' own f32/bf16 as the yardstick.
  REF=$SHARED/references/tiny-llama_visible.h5
  if [[ -x $BUILD/loadgen/loadgen && -f $REF ]]; then
    lg_ref() {  # name, loadgen options...
      local name=$1; shift
      "$BUILD/loadgen/loadgen" --reference "$REF" --model "$SHARED/models/tiny-llama" --tokenizer "$TOKENIZER" \
        --dump-logits "$OUT/tiny_$name.h5" --out "$OUT/lg_accuracy_$name" --quiet "$@" >>"$OUT/accuracy.log" 2>&1
      log "loadgen --reference ($name) exit $?"
    }
    allclose() {  # base, new, tol
      echo "--- acc_allclose $(basename "$1") $(basename "$2") --rtol $3 --atol $3" | tee -a "$OUT/accuracy.log"
      "$BUILD/accuracy/acc_allclose" "$1" "$2" --rtol "$3" --atol "$3" --json "$OUT/allclose_$(basename "$2" .h5)_$3.json" \
        >"$OUT/allclose.tmp" 2>&1
      local rc=$?
      cat "$OUT/allclose.tmp" >>"$OUT/accuracy.log"; grep -E "passed|top-1|worst|^ *[0-9]+ " "$OUT/allclose.tmp" | head -14
      log "acc_allclose exit $rc"
    }
    log "accuracy: tiny-llama teacher-forced, CPU f32 vs CUDA f32 vs CUDA bf16"
    lg_ref cpu --backend cpu
    lg_ref cuda_f32 --backend cuda --dtype f32
    lg_ref cuda_bf16 --backend cuda
    allclose "$OUT/tiny_cpu.h5" "$OUT/tiny_cuda_f32.h5" 1e-4
    allclose "$OUT/tiny_cpu.h5" "$OUT/tiny_cuda_bf16.h5" 2e-2
    # Batch invariance end to end (the README's precision workflow on the GPU): 16 requests alone at batch
    # size 1, then at batch size 64 under 5 req/s fed the same tokens; --deterministic must be bit-identical.
    for mode in deterministic default; do
      flag=(); [[ $mode == deterministic ]] && flag=(--deterministic)
      common_acc=(--model "$SHARED/models/tiny-llama" --tokenizer "$TOKENIZER" --backend "${INV_BACKEND:-cuda}"
                  --quiet "${flag[@]}")
      "$BUILD/loadgen/loadgen" "${common_acc[@]}" --dataset "$DATASET" -n 16 -X inf --batch-size 1 \
        --dump-logits "$OUT/inv_${mode}_b1.h5" \
        --out "$OUT/lg_inv_${mode}_b1" >>"$OUT/accuracy.log" 2>&1
      "$BUILD/loadgen/loadgen" "${common_acc[@]}" -X 5 --batch-size 64 --reference "$OUT/inv_${mode}_b1.h5" \
        --dump-logits "$OUT/inv_${mode}_b64.h5" --out "$OUT/lg_inv_${mode}_b64" >>"$OUT/accuracy.log" 2>&1
      log "batch invariance ($mode): batch 1 vs batch 64"
      allclose "$OUT/inv_${mode}_b1.h5" "$OUT/inv_${mode}_b64.h5" 0
    done
    if [[ -x $BUILD/bench/bf16_error_budget ]]; then
      log "bf16_error_budget: tiny-llama (float64; what each bf16 rounding point costs at 2e-2)"
      "$BUILD/bench/bf16_error_budget" "$SHARED/models/tiny-llama" --tokens 40 --prompts 3 --last 8 \
        | tee "$OUT/bf16_budget_tiny.txt"
    fi
    # The yardstick: transformers itself in f32 and bf16 against the file, scored the same way as ours.
    python3 "$ROOT/bench/gpu/hf_bf16_yardstick.py" "$REF" "$SHARED/models/tiny-llama" "$OUT/tiny_cuda_bf16.h5" \
      "$OUT/tiny_cuda_f32.h5" "$OUT/tiny_cpu.h5" >"$OUT/yardstick.json" 2>"$OUT/yardstick.log"
    log "yardstick exit $?"; cat "$OUT/yardstick.json"; tail -3 "$OUT/yardstick.log"
  else
    log "accuracy: needs loadgen, acc_allclose and $REF; skipped"
  fi
fi

if has fp8; then
  # What the fp8 KV cache costs in accuracy: the same teacher-forced replays with the bf16 cache (baseline) and
  # the fp8 cache, scored by acc_allclose (top-1 agreement, KL): tiny-llama and stories260K against their
  # shared references' tokens, then dummy:llama-2-7b fed the tokens its bf16-cache run generated.
  if [[ -x $BUILD/loadgen/loadgen && -x $BUILD/accuracy/acc_allclose ]]; then
    fp8_pair() {  # name, loadgen options...
      local name=$1; shift
      for kv in bf16 fp8; do
        local kvopt=(); [[ $kv == fp8 ]] && kvopt=(--kv-cache-dtype fp8)
        "$BUILD/loadgen/loadgen" --backend cuda --quiet "$@" "${kvopt[@]}" --dump-logits "$OUT/fp8acc_${name}_$kv.h5" \
          --out "$OUT/lg_fp8acc_${name}_$kv" >>"$OUT/fp8acc.log" 2>&1
        log "loadgen fp8 accuracy ($name, $kv KV) exit $?"
      done
      echo "--- acc_allclose $name: bf16 KV vs fp8 KV (--rtol 2e-2 --atol 2e-2)" | tee -a "$OUT/fp8acc.log"
      "$BUILD/accuracy/acc_allclose" "$OUT/fp8acc_${name}_bf16.h5" "$OUT/fp8acc_${name}_fp8.h5" --rtol 2e-2 --atol 2e-2 \
        --json "$OUT/fp8acc_${name}.json" 2>&1 | tee -a "$OUT/fp8acc.log" | head -30
    }
    fp8_pair tiny-llama --reference "$SHARED/references/tiny-llama_visible.h5" --model "$SHARED/models/tiny-llama" \
      --tokenizer "$TOKENIZER"
    fp8_pair stories260K --reference "$SHARED/references/stories260K_visible.h5" \
      --model "$SHARED/models/stories260K/stories260K.bin"
    # The same replays priced in float64 (CPU): the fp8 cache's e4m3 rounding of K and V, together and each alone,
    # and exact arithmetic, each against the bf16 pipeline (row 9): what the GPU's agreement should be.
    if [[ -x $BUILD/bench/bf16_error_budget ]]; then
      for m in "tiny-llama models/tiny-llama" "stories260K models/stories260K/stories260K.bin"; do
        set -- $m
        "$BUILD/bench/bf16_error_budget" "$SHARED/$2" --reference "$SHARED/references/$1_visible.h5" --prompts 100 \
          --base 9 --variants 0,11,12,13 | tee -a "$OUT/fp8acc.log" "$OUT/fp8_budget_$1.txt"
      done
    fi
    # 7B: a bf16-cache run generates (32 requests, 64 tokens each); both caches are then fed its tokens.
    "$BUILD/loadgen/loadgen" --backend cuda --quiet --model dummy:llama-2-7b --tokenizer "$TOKENIZER" \
      --dataset "$DATASET" -n 32 -X inf --output-len 64 --dump-logits "$OUT/fp8acc_7b_gen.h5" \
      --out "$OUT/lg_fp8acc_7b_gen" >>"$OUT/fp8acc.log" 2>&1
    log "loadgen 7b generate exit $?"
    fp8_pair 7b --reference "$OUT/fp8acc_7b_gen.h5" --model dummy:llama-2-7b --tokenizer "$TOKENIZER"
  else
    log "fp8: needs loadgen and acc_allclose; skipped"
  fi
fi

if has bench; then
  log "bench: cuda_decode_bench (dummy:llama-2-7b, ${LLM_BENCH_CONTEXT:-300}-token contexts)"
  "$BUILD/engine/cuda_decode_bench" --benchmark_out="$OUT/decode_bench.json" --benchmark_out_format=json \
    >"$OUT/decode_bench.log" 2>&1
  log "cuda_decode_bench exit $?"
  # What the small-M GEMV and the CUDA graphs each buy, at batch 1 (and 4 for the GEMV): same machine, same run.
  [[ ${ABLATE:-1} == 1 ]] && LLM_CUDA_GEMV=0 "$BUILD/engine/cuda_decode_bench" --benchmark_filter='BM_DecodeStep/(1|4)/' \
    --benchmark_out="$OUT/decode_bench_nogemv.json" --benchmark_out_format=json >"$OUT/decode_bench_ablate.log" 2>&1
  [[ ${ABLATE:-1} == 1 ]] && LLM_CUDA_GRAPHS=0 "$BUILD/engine/cuda_decode_bench" --benchmark_filter='BM_DecodeStep/1/' \
    --benchmark_out="$OUT/decode_bench_nographs.json" --benchmark_out_format=json >>"$OUT/decode_bench_ablate.log" 2>&1
  # v21's early K/V loads off at batch 1 (on by default for one-row decode launches).
  [[ ${ABLATE:-1} == 1 ]] && LLM_CUDA_ATTN_EARLY_KV=0 "$BUILD/engine/cuda_decode_bench" --benchmark_filter='BM_DecodeStep/1/' \
    --benchmark_out="$OUT/decode_bench_noearlykv.json" --benchmark_out_format=json >>"$OUT/decode_bench_ablate.log" 2>&1
  # Programmatic dependent launch off (cuda-notes v10): every kernel waits for the one before it to finish.
  [[ ${ABLATE_PDL:-1} == 1 ]] && LLM_CUDA_PDL=0 "$BUILD/engine/cuda_decode_bench" \
    --benchmark_filter='BM_DecodeStep/(1|4|16|64|128|256)/' --benchmark_out="$OUT/decode_bench_nopdl.json" \
    --benchmark_out_format=json >"$OUT/decode_bench_nopdl.log" 2>&1
  # v8 against v7 in the same run: decode attention version 2 off (attention.cu's kernel for decode rows).
  [[ ${ABLATE_V8:-1} == 1 ]] && LLM_CUDA_ATTN_V2=0 "$BUILD/engine/cuda_decode_bench" \
    --benchmark_filter='BM_DecodeStep/(16|64|128|256)/' --benchmark_out="$OUT/decode_bench_v7.json" \
    --benchmark_out_format=json >"$OUT/decode_bench_v7.log" 2>&1
  # The skinny tensor-core GEMM (off by default: slower than cuBLAS and the GEMV when measured; cuda-notes v8).
  [[ ${ABLATE_V8:-1} == 1 ]] && LLM_CUDA_SKINNY=1 LLM_CUDA_GEMV=0 "$BUILD/engine/cuda_decode_bench" \
    --benchmark_filter='BM_DecodeStep/(1|4|16|64)/' --benchmark_out="$OUT/decode_bench_skinny.json" \
    --benchmark_out_format=json >"$OUT/decode_bench_skinny.log" 2>&1
  # The fp8 KV cache (e4m3, per-token scales): half the KV bytes.
  [[ ${FP8:-1} == 1 ]] && LLM_BENCH_KV_DTYPE=fp8 "$BUILD/engine/cuda_decode_bench" \
    --benchmark_filter='BM_DecodeStep/(1|16|64|128|256)/' --benchmark_out="$OUT/decode_bench_fp8.json" \
    --benchmark_out_format=json >"$OUT/decode_bench_fp8.log" 2>&1
  # What batch invariance (--deterministic) costs: the same steps with 128-row GEMMs and unsplit attention.
  [[ ${DETBENCH:-1} == 1 ]] && LLM_BENCH_DETERMINISTIC=1 "$BUILD/engine/cuda_decode_bench" \
    --benchmark_filter='BM_DecodeStep/(1|16|64|128|256)/|BM_MixedStep' \
    --benchmark_out="$OUT/decode_bench_det.json" --benchmark_out_format=json >"$OUT/decode_bench_det.log" 2>&1
  # v18's switches (docs/cuda-notes.md, v18): the last split block merges (on since v18; =0 times the combine
  # kernel), and, off since they measured slower on an H100, the attention prefetching the O weights into L2 at
  # small batch, 8 tokens in flight per lane group (both modes), fp8 read 8 bytes a lane, the batch-1 GEMVs
  # prefetching the start of their weights into L2 before their wait.
  if [[ ${ABLATE_V18:-1} == 1 ]]; then
    i=0
    for v in "LLM_CUDA_MERGE_IN_KERNEL=0" "LLM_CUDA_L2_PREFETCH_ROWS=4" "LLM_CUDA_MERGE_IN_KERNEL=0 LLM_CUDA_L2_PREFETCH_ROWS=4" \
             "LLM_CUDA_ATTN_R=8" "LLM_BENCH_DETERMINISTIC=1 LLM_CUDA_DET_ATTN_R=8" \
             "LLM_BENCH_DETERMINISTIC=1 LLM_CUDA_DET_ATTN_R=8 LLM_CUDA_L2_PREFETCH_ROWS=4" \
             "LLM_BENCH_KV_DTYPE=fp8 LLM_CUDA_ATTN_R=8" "LLM_BENCH_KV_DTYPE=fp8 LLM_CUDA_FP8_LANE_BYTES=8" \
             "LLM_CUDA_GEMV_L2_AHEAD_KB=128" "LLM_CUDA_GEMV_L2_AHEAD_KB=256" \
             "LLM_BENCH_DETERMINISTIC=1 LLM_CUDA_GEMV_L2_AHEAD_KB=128"; do
      i=$((i + 1))
      echo "== $v" >>"$OUT/decode_bench_v18.log"
      env $v "$BUILD/engine/cuda_decode_bench" --benchmark_filter='BM_DecodeStep/(1|4|16|64|256)/' \
        --benchmark_out="$OUT/decode_bench_v18_$i.json" --benchmark_out_format=json >>"$OUT/decode_bench_v18.log" 2>&1
    done
  fi
  cat "$OUT/decode_bench.log" | grep -v "^\*\*\*" | tail -25
fi

if has loadgen; then
  LG=$BUILD/loadgen/loadgen
  if [[ ! -x $LG ]]; then
    log "loadgen: no loadgen binary, skipped"
  else
    common=(--dataset "$DATASET" --tokenizer "$TOKENIZER" --model dummy:llama-2-7b --backend cuda
            --batch-size "$BATCH" --quiet)
    log "loadgen: -X inf -n $N"
    "$LG" -X inf -n "$N" "${common[@]}" --out "$OUT/lg_offline" >"$OUT/lg_offline.log" 2>&1
    log "loadgen offline exit $?"; tail -25 "$OUT/lg_offline.log"
    # The same requests, longest first: the run ends when its longest request does (up to 512 sequential
    # decode steps), so starting those first shortens the tail.
    "$LG" -X inf -n "$N" "${common[@]}" --reorder length-desc --out "$OUT/lg_offline_desc" >"$OUT/lg_offline_desc.log" 2>&1
    log "loadgen offline --reorder length-desc exit $?"; grep -E "Exec Time|Output tokens" "$OUT/lg_offline_desc.log"
    if [[ ${ONLINE_T:-300} != 0 ]]; then
      log "loadgen: -X 5 -T ${ONLINE_T:-300}"
      "$LG" -X 5 -T "${ONLINE_T:-300}" "${common[@]}" --out "$OUT/lg_online" >"$OUT/lg_online.log" 2>&1
      log "loadgen online exit $?"; tail -25 "$OUT/lg_online.log"
      # v18: the same run with each decode graph captured by the first step of its batch size, inside some
      # request's inter-token time (LLM_CUDA_GRAPHS_AT_LOAD=0: the path before v18; the default captures them all
      # when the KV cache is allocated).
      if [[ ${ABLATE_V18:-1} == 1 ]]; then
        LLM_CUDA_GRAPHS_AT_LOAD=0 "$LG" -X 5 -T "${ONLINE_T:-300}" "${common[@]}" --out "$OUT/lg_online_graphs_lazy" \
          >"$OUT/lg_online_graphs_lazy.log" 2>&1
        log "loadgen online (graphs captured during the run) exit $?"; grep -E "TTFT|TPOT|Verdict" "$OUT/lg_online_graphs_lazy.log"
      fi
    fi
  fi
fi

if has prefix; then
  # Prefix caching on the shared-prefix workload: 16 prefixes of 511 random characters (the byte tokenizer:
  # a character a token, bos making 512), each request adding 64 characters of its own; TTFT without and with
  # --enable-prefix-caching, dummy:llama-2-7b, the same requests and arrival times.
  LG=$BUILD/loadgen/loadgen
  PREFIX_N=${PREFIX_N:-768} PREFIX_RATE=${PREFIX_RATE:-32} PREFIX_MODEL=${PREFIX_MODEL:-dummy:llama-2-7b}
  python3 - "$OUT/prefix.json" "$PREFIX_N" <<'PYEOF'
import json, random, sys
rng = random.Random(7)
abc = "abcdefghijklmnopqrstuvwxyz     "
prefixes = ["".join(rng.choice(abc) for _ in range(511)) for _ in range(16)]
recs = [{"instruction": prefixes[i % 16] + "".join(rng.choice(abc) for _ in range(64)), "input": "", "output": "x"}
        for i in range(int(sys.argv[2]))]
json.dump(recs, open(sys.argv[1], "w"))
PYEOF
  for pc in off on; do
    flag=(); [[ $pc == on ]] && flag=(--enable-prefix-caching)
    tag=${PREFIX_TAG:+${PREFIX_TAG}_}$pc
    "$LG" --model "$PREFIX_MODEL" --backend cuda --dataset "$OUT/prefix.json" --prompt-template raw \
      --output-len 16 -n "$PREFIX_N" -X "$PREFIX_RATE" --seed 3 --batch-size 64 "${flag[@]}" \
      --out "$OUT/lg_prefix_$tag" >"$OUT/lg_prefix_$tag.log" 2>&1
    log "loadgen prefix caching $pc ($PREFIX_MODEL, $PREFIX_RATE req/s) exit $?"
    grep -E "TTFT|Prefix|prefix|hit" "$OUT/lg_prefix_$tag.log" | head -8
  done
fi

if has peer; then
  log "peer: transformers generate, static batches of 64 (batches: ${PEER_BATCHES:-0}, 0 = all)"
  timeout "${PEER_TIMEOUT:-3600}" python3 "$ROOT/bench/gpu/hf_peer.py" --dataset "$DATASET" --tokenizer "$TOKENIZER" -n "$N" --batch 64 \
    --max-batches "${PEER_BATCHES:-0}" >"$OUT/peer.json" 2>"$OUT/peer.log"
  log "peer exit $? (124: stopped by PEER_TIMEOUT; the last line counts)"; tail -2 "$OUT/peer.json"; tail -5 "$OUT/peer.log"
fi

if has table; then
  python3 "$ROOT/bench/gpu/table.py" "$OUT" | tee "$OUT/table.txt"
fi
