#!/usr/bin/env python3
# Reads a kernel trace CSV, gzipped or not: nsys's cuda_gpu_trace report of a decode bench under
# --cuda-graph-trace=node, or cuda_decode_bench's own CUPTI trace (LLM_BENCH_KERNEL_TRACE, the same column
# names), and prints, for the steps of the most common kernel count (each starting at the
# embedding kernel), the median span and, per kernel name, the summed median duration and the summed gap before
# each launch (negative: overlap under PDL).   graph_trace.py b1_cuda_gpu_trace.csv.gz
import csv, gzip, sys, statistics, collections
rows = list(csv.DictReader(gzip.open(sys.argv[1], 'rt') if sys.argv[1].endswith('.gz') else open(sys.argv[1])))
ks = []
for r in rows:
    n = r.get('Name', '')
    try: st = int(r['Start (ns)']); du = int(r['Duration (ns)'])
    except: continue
    ks.append((st, du, n))
ks.sort()
# steps start at the embedding kernel
idx = [i for i, k in enumerate(ks) if 'embedding' in k[2]]
steps = [ks[idx[j]:idx[j+1]] for j in range(len(idx)-1)]
lens = collections.Counter(len(s) for s in steps)
print('steps', len(steps), 'kernels per step', lens.most_common(3))
n0 = lens.most_common(1)[0][0]
steps = [s for s in steps if len(s) == n0][-20:]
span = [s[-1][0] + s[-1][1] - s[0][0] for s in steps]
print('span us median', statistics.median(span) / 1e3)
def short(n):
    n = n.replace('(anonymous namespace)::', '').replace('void ', '').replace('engine::cuda::', '').split('(')[0]
    return n[:60]
# per position: median duration and gap
agg = collections.defaultdict(lambda: [0.0, 0.0, 0])
for p in range(n0):
    d = statistics.median(s[p][1] for s in steps)
    g = statistics.median((s[p][0] - (s[p-1][0] + s[p-1][1])) if p else 0 for s in steps)
    k = short(steps[0][p][2])
    agg[k][0] += d; agg[k][1] += g; agg[k][2] += 1
    if p < 16: print(f'{p:3d} {k:60s} dur {d/1e3:7.2f} gap {g/1e3:6.2f}')
print('per kernel: count, sum dur us, sum gap-before us (negative = overlap under PDL)')
for k, v in sorted(agg.items(), key=lambda x: -x[1][0]):
    print(f'{k:60s} {v[2]:4d} {v[0]/1e3:9.1f} {v[1]/1e3:8.1f}')
