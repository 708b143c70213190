#!/usr/bin/python3
"""Pipeline bubble from a `loom train --pipeline-trace` file: per stage, the fraction of each iteration
(the schedule's span on that stage) not spent in forward or backward compute, averaged over iterations
after the first, next to the theory: (P-1)/(M+P-1) of the time idle for 1F1B/GPipe, (P-1)/(V*M+P-1)
interleaved (Megatron's bubble ratios (P-1)/M and (P-1)/(V*M) relative to compute). Zero-bubble's W passes
count as compute.

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
theory = (P - 1) / (V * M + P - 1)
idle_all = []
for stage in sorted(iters):
    fr = []
    for (a, b) in iters[stage][1:]:
        busy = sum(min(y, b) - max(x, a) for (x, y) in compute[stage] if y > a and x < b)
        fr.append(1 - busy / (b - a))
    idle = sum(fr) / max(len(fr), 1)
    idle_all.append(idle)
    print(f"stage {stage}: idle {idle:.3f} of each iteration")
print(f"mean idle {sum(idle_all) / len(idle_all):.3f}; theory {theory:.3f} (bubble/compute {(P - 1) / (V * M):.3f})")
