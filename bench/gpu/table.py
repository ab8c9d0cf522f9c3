#!/usr/bin/env python3
"""Prints bench/gpu/run.sh's one table from what its stages left in OUT: decode steps vs their floor
(decode_bench.json), the loadgen runs (lg_offline/, lg_online/ summary.json), and the transformers peer
(peer.json). Missing pieces are reported as missing."""
import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def find(d, *names):
    """First value found under any of the dotted names (summary layouts differ between versions)."""
    for n in names:
        cur = d
        for part in n.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return None


def main(out):
    print("=" * 78)
    bench = load(os.path.join(out, "decode_bench.json"))
    if bench:
        ctx = bench.get("context", {})
        print(f"decode step, dummy:llama-2-7b bf16, ~300-token contexts ({ctx.get('host_name', '')})")
        print(f"{'batch':>6} {'step ms':>9} {'floor ms':>9} {'floor/step':>10} {'GB/step':>8} {'tok/s':>9}")
        for b in bench.get("benchmarks", []):
            if not b["name"].startswith("BM_DecodeStep"):
                continue
            ms = b["real_time"] if b.get("time_unit") == "ms" else b["real_time"] / 1e6
            print(f"{int(b['batch']):>6} {ms:>9.3f} {b['floor_ms']:>9.3f} {100 * b['floor_ms'] / ms:>9.1f}% "
                  f"{b['GB_per_step']:>8.2f} {int(b['batch']) / ms * 1e3:>9.0f}")
        copy = [b["copy_GBps"] for b in bench.get("benchmarks", []) if "copy_GBps" in b]
        if copy:
            print(f"floor = (weights + KV bytes read) / measured copy bandwidth {copy[0]:.0f} GB/s (read + write)")
        for fname, what in (("decode_bench_nogemv.json", "cuBLAS instead of the small-M GEMV"),
                            ("decode_bench_nographs.json", "eager launches instead of a CUDA graph"),
                            ("decode_bench_noearlykv.json", "the attention's K/V loads after its PDL wait (v21 off)")):
            ab = load(os.path.join(out, fname))
            for b in (ab or {}).get("benchmarks", []):
                if b["name"].startswith("BM_DecodeStep"):
                    print(f"  batch {int(b['batch'])} with {what}: {b['real_time']:.3f} ms "
                          f"({100 * b['floor_ms'] / b['real_time']:.1f}% of floor)")
        base = {b["name"]: b for b in bench.get("benchmarks", [])}
        for fname, what in (("decode_bench_v7.json", "v7 (attention.cu's kernel for decode rows)"),
                            ("decode_bench_fp8.json", "fp8 KV cache"),
                            ("decode_bench_skinny.json", "skinny GEMM instead of the GEMV and cuBLAS")):
            ab = load(os.path.join(out, fname))
            if not ab:
                continue
            print(f"{what} vs default, same steps:")
            for b in ab.get("benchmarks", []):
                ref = base.get(b["name"])
                if ref and b["name"].startswith("BM_DecodeStep"):
                    print(f"  batch {int(b['batch']):>4}: {b['real_time']:>8.3f} ms vs {ref['real_time']:>8.3f} ms "
                          f"({100 * (b['real_time'] / ref['real_time'] - 1):+.1f}%), floor {b['floor_ms']:.3f} ms "
                          f"= {100 * b['floor_ms'] / b['real_time']:.1f}% of the step")
        det = load(os.path.join(out, "decode_bench_det.json"))
        if det:
            base = {b["name"]: b for b in bench.get("benchmarks", [])}
            print("--deterministic (128-row GEMMs, unsplit attention) vs default, same steps:")
            for b in det.get("benchmarks", []):
                ref = base.get(b["name"])
                if ref and b["name"].startswith(("BM_DecodeStep", "BM_MixedStep")):
                    print(f"  {b['name'].split('/manual_time')[0]:<22} {b['real_time']:>8.3f} ms vs {ref['real_time']:>8.3f} ms "
                          f"({100 * (b['real_time'] / ref['real_time'] - 1):+.1f}%)")
        for b in bench.get("benchmarks", []):
            if b["name"].startswith("BM_MixedStep"):
                print(f"mixed step, {int(b['tokens'])} tokens (192 decodes + 28 prompts of 65): {b['real_time']:.2f} ms, "
                      f"matrix work {b['gemm_tflop'] / b['real_time'] * 1e3:.0f} TFLOP/s")
        for b in bench.get("benchmarks", []):
            if b["name"].startswith("BM_PrefillStep"):
                print(f"prefill of one {int(b['tokens'])}-token prompt: {b['real_time']:.2f} ms")
    else:
        print("decode bench: missing")
    print("-" * 78)
    offline_tps = None
    for name, label in (("lg_offline", "loadgen -X inf"), ("lg_offline_desc", "loadgen -X inf --reorder length-desc"),
                        ("lg_online", "loadgen -X 5")):
        cands = glob.glob(os.path.join(out, name, "**", "summary.json"), recursive=True)
        s = load(cands[0]) if cands else None
        if not s:
            print(f"{label}: missing")
            continue
        total = find(s, "duration", "duration_s")
        tps = find(s, "output_throughput", "output_tokens_per_s")
        if name == "lg_offline":
            offline_tps = tps
        line = (f"{label}: {s.get('completed')} requests, total {total:.1f} s, output {s.get('total_output_tokens')} "
                f"tokens, {tps:.0f} output tok/s")
        if name == "lg_online":
            line += (f"\n    TTFT p50 {s['median_ttft_ms']:.1f} ms p99 {s['p99_ttft_ms']:.1f} ms; "
                     f"TPOT p50 {s['median_tpot_ms']:.2f} ms p99 {s['p99_tpot_ms']:.2f} ms; kept up: {s.get('kept_up')}")
        print(line)
    peer = None
    try:
        with open(os.path.join(out, "peer.json")) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        peer = json.loads(lines[-1]) if lines else None  # cumulative lines: the last one counts
    except (OSError, ValueError):
        pass
    if peer:
        print(f"peer ({peer['peer']}): {peer['requests']} requests in {peer['batches']} static batches of "
              f"{peer['batch_size']}: {peer['seconds']} s, {peer['useful_tok_per_s']} useful output tok/s "
              f"({peer['generated_tok_per_s']} generated)")
        if offline_tps:
            print(f"ratio ours / peer (output tok/s): {float(offline_tps) / peer['useful_tok_per_s']:.1f}x")
    else:
        print("peer: missing")
    print("=" * 78)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
