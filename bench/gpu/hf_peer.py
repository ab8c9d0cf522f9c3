#!/usr/bin/env python3
"""The PyTorch/transformers peer of the offline loadgen run: LlamaForCausalLM with the Llama-2-7B shape and
random bf16 weights, `generate` (greedy) over static batches of 64 Alpaca-shaped requests.

Requests: alpaca_200.json cycled in file order; prompt = the Stanford Alpaca template (as loadgen renders
it) tokenized with the Llama 2 SentencePiece tokenizer plus bos; output length = the reference answer's
token count clamped to [1, 512] (as loadgen's workload does). A static batch generates max(out_len) tokens
for every member (min_new_tokens = max_new_tokens, no eos), which is what static batching costs; the
useful output is sum(out_len). Prints a cumulative JSON line after each batch.
"""
import argparse
import json
import time

import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM


def render(instruction: str, inp: str) -> str:
    if not inp:
        return ("Below is an instruction that describes a task. Write a response that appropriately completes the "
                "request.\n\n### Instruction:\n" + instruction + "\n\n### Response:")
    return ("Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\n" + instruction +
            "\n\n### Input:\n" + inp + "\n\n### Response:")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("-n", type=int, default=1500, help="requests (the dataset cycled)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--max-batches", type=int, default=0, help="time only the first K batches (0: all)")
    ap.add_argument("--max-new-tokens", type=int, default=512)
    args = ap.parse_args()

    with open(args.dataset) as f:
        records = json.load(f)
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    reqs = []
    for i in range(args.n):
        r = records[i % len(records)]
        prompt = [1] + sp.encode(render(r["instruction"], r.get("input", "")))
        out_len = min(max(len(sp.encode(r["output"])), 1), args.max_new_tokens)
        reqs.append((prompt, out_len))
    batches = [reqs[i:i + args.batch] for i in range(0, len(reqs), args.batch)]
    if args.max_batches > 0:
        batches = batches[:args.max_batches]

    cfg = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                      rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    model.eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0

    def run(batch):
        width = max(len(p) for p, _ in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (p, _) in enumerate(batch):  # left padding
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        new = max(o for _, o in batch)
        with torch.no_grad():
            out = model.generate(input_ids=ids.cuda(), attention_mask=mask.cuda(), max_new_tokens=new,
                                 min_new_tokens=new, do_sample=False)
        return out.shape[1] - width, new

    run([(reqs[0][0], 4), (reqs[1][0], 4)])  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    generated = useful = nreq = 0
    for i, b in enumerate(batches):
        got, new = run(b)
        assert got == new, (got, new)
        generated += got * len(b)
        useful += sum(o for _, o in b)
        nreq += len(b)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        # One cumulative line per batch, so a run cut short by a time limit still reports what it measured.
        print(json.dumps({"peer": "transformers " + __import__("transformers").__version__ + " torch " +
                          torch.__version__, "device": torch.cuda.get_device_name(), "requests": nreq,
                          "batches": i + 1, "batch_size": args.batch, "seconds": round(dt, 3),
                          "useful_output_tokens": useful, "generated_tokens": generated,
                          "useful_tok_per_s": round(useful / dt, 1), "generated_tok_per_s": round(generated / dt, 1)}),
              flush=True)

if __name__ == "__main__":
    main()
