#!/usr/bin/python3
"""Compares the argument block `loom train` printed with a reference run's (tests/data/megatron_seeds/).

usage: compare_arguments.py LOOM_OUTPUT SEED_BLOCK [--rename v1=loom ...] [--skip name ...]

Every name both blocks have must show the same value, except the names given with --skip (sizes shrunk,
paths replaced, each with its reason in the calling test). --rename maps a Megatron v1 name onto Loom's
(batch_size=micro_batch_size). Values compare as Python prints them, with None = False for flags whose
default argparse leaves at None, and numbers by value (1e-2 = 0.01). Prints the count of names compared
and every difference; exits 1 on a difference.
"""

import re
import sys


def block(path, v1=False):
    values = {}
    inside = v1
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if "-- arguments --" in line:
            inside = True
            continue
        if "end of arguments" in line:
            break
        if not inside or not line.startswith("  "):
            continue
        m = re.match(r"  (\S+) \.*\s?(.*)$", line) if not v1 else re.match(r"  (\S+)\s+\.*\s?(.*)$", line)
        if m:
            values.setdefault(m.group(1), m.group(2).strip())
    return values


def same(a, b):
    if a == b:
        return True
    # Unset: argparse's None, an empty string or list, False for a store_true left at None.
    if {a, b} <= {"None", "False"} or {a, b} <= {"None", ""} or {a, b} <= {"None", "[]"}:
        return True
    if a.startswith("[") and a.replace("'", "") == b.replace("'", ""):  # [0] and ['0']
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def main():
    loom_out, seed = sys.argv[1], sys.argv[2]
    renames, skips = {}, set()
    mode = None
    for arg in sys.argv[3:]:
        if arg in ("--rename", "--skip"):
            mode = arg
        elif mode == "--rename":
            k, v = arg.split("=")
            renames[k] = v
        else:
            skips.add(arg)
    v1 = seed.endswith("001.arguments")
    loom, ref = block(loom_out), block(seed, v1)
    compared, bad = 0, []
    for name, value in ref.items():
        if name in skips:
            continue
        mine = renames.get(name, name)
        if mine not in loom:
            continue
        compared += 1
        if not same(loom[mine], value):
            bad.append(f"  {name}: seed {value!r}, loom {loom[mine]!r}")
    unused = sorted(s for s in skips if s not in ref)
    print(f"compared {compared} names with {seed.split('/')[-1]}")
    if unused:
        bad.append(f"  --skip names the seed does not have: {unused}")
    for b in bad:
        print(b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
