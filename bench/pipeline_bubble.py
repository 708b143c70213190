#!/usr/bin/python3
"""Pipeline bubble from a `loom train --pipeline-trace` file: per stage, the fraction of each training step not
spent in forward or backward compute, averaged over iterations after the first, next to the theory: (P-1)/(M+P-1)
of the step idle for 1F1B/GPipe, (P-1)/(V*M+P-1) interleaved (Megatron's bubble ratios (P-1)/M and (P-1)/(V*M)
relative to compute). Zero-bubble's W passes count as compute.

The step of iteration k is the longest stage's span of it: every stage waits for the slowest one at the
optimizer step, so a stage whose schedule ends early (1F1B's last stage, done while the first runs its last
backward) is idle until then. Each stage's idle of its own span, which leaves that wait out, is printed beside it.

usage: pipeline_bubble.py TRACE P M V"""
import json, sys
from collections import defaultdict

trace, P, M, V = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
events = json.load(open(trace))["traceEvents"]
iters = defaultdict(list)
compute = defaultdict(list)
for e in events:
    if e["name"] == "iteration":
        iters[e["pid"]].append((e["ts"], e["ts"] + e["dur"]))
    elif e["name"][0] in "FBW":
        compute[e["pid"]].append((e["ts"], e["ts"] + e["dur"]))
stages = sorted(iters)
n = min(len(iters[s]) for s in stages)
theory = (P - 1) / (V * M + P - 1)
idle_all = []
for stage in stages:
    of_step, of_span = [], []
    for k in range(1, n):
        a, b = iters[stage][k]
        step = max(iters[s][k][1] - iters[s][k][0] for s in stages)
        busy = sum(min(y, b) - max(x, a) for (x, y) in compute[stage] if y > a and x < b)
        of_step.append(1 - busy / step)
        of_span.append(1 - busy / (b - a))
    idle = sum(of_step) / max(len(of_step), 1)
    idle_all.append(idle)
    print(f"stage {stage}: idle {idle:.3f} of each step ({sum(of_span) / max(len(of_span), 1):.3f} of its own span)")
print(f"mean idle {sum(idle_all) / len(idle_all):.3f}; theory {theory:.3f} (bubble/compute {(P - 1) / (V * M):.3f})")
