#!/usr/bin/env python3
"""What "bf16 tolerance" means on a reference logits file: runs transformers' LlamaForCausalLM teacher-forced
over the file's requests in float32 and in bfloat16 on the GPU and scores both against the file with the
acc_allclose rule (|new - base| <= atol + rtol*|base|), next to any number of our own logits files (e.g. the
CUDA backend's, written by loadgen --reference ... --dump-logits). One JSON line per candidate."""
import argparse
import json

import h5py
import numpy as np
import torch
from transformers import LlamaForCausalLM


def score(ref, cand, rtol, atol):
    """ref, cand: {id: logits [steps, vocab]}"""
    n_el = n_bad = rows = top1 = passed = 0
    max_abs = max_row_rel = 0.0
    for rid, base in ref.items():
        new = cand[rid][: base.shape[0]]
        base = base[: new.shape[0]].astype(np.float64)
        new = new.astype(np.float64)
        d = np.abs(new - base)
        bad = d > atol + rtol * np.abs(base)
        n_el += d.size
        n_bad += int(bad.sum())
        passed += int(not bad.any())
        max_abs = max(max_abs, float(d.max()))
        rel = np.linalg.norm(new - base, axis=1) / np.linalg.norm(base, axis=1)
        max_row_rel = max(max_row_rel, float(rel.max()))
        top1 += int((new.argmax(1) == base.argmax(1)).sum())
        rows += base.shape[0]
    return {"requests_passed": f"{passed}/{len(ref)}", "elements_within_tol": round(1 - n_bad / n_el, 5),
            "max_abs": round(max_abs, 4), "max_row_rel_err": round(max_row_rel, 4), "top1": f"{top1}/{rows}"}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("reference")
    ap.add_argument("model_dir")
    ap.add_argument("candidates", nargs="*", help="our logits files to score the same way")
    ap.add_argument("--rtol", type=float, default=2e-2)
    ap.add_argument("--atol", type=float, default=2e-2)
    args = ap.parse_args()
    ref, inputs = {}, {}
    with h5py.File(args.reference) as f:
        for rid, g in f["requests"].items():
            ref[rid] = g["logits"][()]
            inputs[rid] = (g["prompt_tokens"][()].tolist(), g["tokens"][()].tolist())
    for dtype in (torch.float32, torch.bfloat16):
        model = LlamaForCausalLM.from_pretrained(args.model_dir, dtype=dtype).cuda().eval()
        out = {}
        with torch.no_grad():
            for rid, (prompt, toks) in inputs.items():
                ids = torch.tensor([prompt + toks[:-1]], device="cuda")
                logits = model(ids).logits[0].float().cpu().numpy()
                out[rid] = logits[len(prompt) - 1:]
        print(json.dumps({"candidate": f"transformers {str(dtype).replace('torch.', '')} (GPU)",
                          **score(ref, out, args.rtol, args.atol)}))
    for path in args.candidates:
        with h5py.File(path) as f:
            cand = {rid: g["logits"][()] for rid, g in f["requests"].items()}
        print(json.dumps({"candidate": path, **score(ref, cand, args.rtol, args.atol)}))


if __name__ == "__main__":
    main()
