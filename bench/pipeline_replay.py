#!/usr/bin/python3
"""What a pipeline order can reach with a run's own pass times: reads a `loom train --pipeline-trace` file of a
zero-bubble run (F, B and W passes), takes each stage's mean F, B and W per micro-batch, and replays M
micro-batches through P stages in 1F1B's order (B and W as one pass) and in ZB-H1's (loom's
zero_bubble_h1_ops: P-s-1 warm-up forwards, s (F, B) pairs, (F, B, W) until the forwards are done, (B, W)
until the backwards are, the remaining W; W always in micro-batch order) with instant transfers. Prints each stage's idle fraction of the
span and the two means, to set beside bench/pipeline_bubble.py's measured ones.

usage: pipeline_replay.py TRACE P M"""
import json
import sys
from collections import defaultdict


def order_1f1b(P, s, M):
    ops, f, b = [], 0, 0
    for _ in range(min(P - s - 1, M)):
        ops.append(("F", f)); f += 1
    while f < M:
        ops.append(("F", f)); f += 1
        ops.append(("BW", b)); b += 1
    while b < M:
        ops.append(("BW", b)); b += 1
    return ops


def order_zb_h1(P, s, M):  # as zero_bubble_h1_ops in src/loom/parallel/pipeline_schedule.cpp
    ops, n = [], {"F": 0, "B": 0, "W": 0}

    def run(*kinds):
        for k in kinds:
            ops.append((k, n[k])); n[k] += 1

    for _ in range(P - s - 1):
        if n["F"] < M: run("F")
    for _ in range(s):
        if n["F"] < M: run("F", "B")
    while n["F"] < M: run("F", "B", "W")
    while n["B"] < M: run("B", "W")
    while n["W"] < M: run("W")
    return ops


def replay(P, M, cost, order):
    orders = [order(P, s, M) for s in range(P)]
    done, t, idx, busy = {}, [0.0] * P, [0] * P, [0.0] * P
    moved = True
    while moved:
        moved = False
        for s in range(P):
            while idx[s] < len(orders[s]):
                kind, m = orders[s][idx[s]]
                if kind == "F":
                    dep = (s - 1, "F", m) if s > 0 else None
                elif kind in ("B", "BW"):
                    dep = (s + 1, "B", m) if s < P - 1 else (s, "F", m)
                else:
                    dep = (s, "B", m)
                if dep is not None and dep not in done:
                    break
                c = cost[s]["B"] + cost[s]["W"] if kind == "BW" else cost[s][kind]
                t[s] = max(t[s], done[dep] if dep else 0.0) + c
                busy[s] += c
                for k in ("B", "W") if kind == "BW" else (kind,):
                    done[(s, k, m)] = t[s]
                idx[s] += 1
                moved = True
    if any(idx[s] < len(orders[s]) for s in range(P)):
        sys.exit("replay stalled: the order's dependencies cannot be met")
    span = max(t)
    return [1 - busy[s] / span for s in range(P)]


def main():
    trace, P, M = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    passes = defaultdict(list)
    for e in json.load(open(trace))["traceEvents"]:
        if e.get("ph") == "X" and e["name"][:1] in ("F", "B", "W"):
            passes[(e["pid"], e["name"][0])].append(e["dur"] / 1000.0)
    cost = [{k: sum(passes[(s, k)]) / max(len(passes[(s, k)]), 1) for k in "FBW"} for s in range(P)]
    for s in range(P):
        print(f"stage {s}: F {cost[s]['F']:.1f} B {cost[s]['B']:.1f} W {cost[s]['W']:.1f} ms per micro-batch")
    means = {}
    for name, order in (("1f1b", order_1f1b), ("zero-bubble", order_zb_h1)):
        idle = replay(P, M, cost, order)
        means[name] = sum(idle) / P
        print(f"{name}: idle " + " ".join(f"{i:.3f}" for i in idle) + f", mean {means[name]:.3f}")
    print(f"zero-bubble / 1f1b: {means['zero-bubble'] / means['1f1b']:.2f}")


if __name__ == "__main__":
    main()
