# DeepSpeed's progress lines in a CoCa run on its engine (reference log 000): "step=0" with every group's
# base lr at start, then every steps_per_print steps the engine's "step=N, skipped=K, lr=[...], mom=[...]"
# (K the OVERFLOW lines so far, the lrs those the run's schedule set for the step) and the throughput
# timer's "epoch=0/micro_step=M/global_step=M, RunningAvgSamplesPerSec=..., CurrSamplesPerSec=...,
# MemAllocated=xGB, MaxMemAllocated=yGB" (the timer starts at its third step). Resumed, the engine's step
# continues from the checkpoint and the timer counts this process's steps again, as DeepSpeed's do.
set -e
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

"$LOOM" make-images --output "$TMP/shapes" --num-train 48 --num-val 8 --image-size 32 --seed 1 >/dev/null
cat > "$TMP/ds.json" <<JSON
{"train_batch_size": 8, "train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 1, "steps_per_print": 4,
 "zero_allow_untested_optimizer": true,
 "fp16": {"enabled": true, "loss_scale": 0, "initial_scale_power": 126, "loss_scale_window": 1000, "hysteresis": 1, "min_loss_scale": 1},
 "optimizer": {"type": "LAMB", "params": {"betas": [0.9, 0.98], "eps": 1e-08}},
 "zero_optimization": {"stage": 1}}
JSON
SMALL=(--model coca --image-size 32 --patch-size 8 --vision-width 32 --vision-layers 1 --vision-heads 2
       --vision-mlp-hidden 64 --text-width 32 --text-layers 1 --text-heads 2 --text-mlp-hidden 64 --decoder-layers 1
       --pooler-queries 4 --pooler-heads 2 --embed-dim 32 --text-context-length 16 --text-vocab-size 50257
       --tokenizer-type GPT2BPETokenizer --vocab-file "$VOCAB" --merge-file "$MERGES"
       --lr 1e-3 --warmup 3 --workers 1 --log-every-n-steps 1 --logs "$TMP/logs" --seed 3
       --train-data "$TMP/shapes/train.jsonl" --deepspeed-config "$TMP/ds.json" --epochs 2)

# 48 images, batch 8: 6 steps an epoch. Stopped after 9 steps, then resumed to the end (12).
run "$LOOM" train "${SMALL[@]}" --name p --max-steps 9
[ "$CODE" -eq 0 ] || fail "the first run exited $CODE"
echo "$OUT" > "$TMP/first.log"
run "$LOOM" train "${SMALL[@]}" --name p --resume latest
[ "$CODE" -eq 0 ] || fail "the resumed run exited $CODE"
echo "$OUT" > "$TMP/resumed.log"

/usr/bin/python3 - "$TMP/first.log" "$TMP/resumed.log" <<'PYEOF' || fail "DeepSpeed's progress lines are wrong"
import re, sys
pre = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \[INFO\] "
step_re = re.compile(pre + r"\[logging\.py:77:log_dist\] \[Rank 0\] step=(\d+), skipped=(\d+), lr=\[(.*)\], mom=\[(.*)\]$")
timer_re = re.compile(pre + r"\[timer\.py:198:stop\] epoch=0/micro_step=(\d+)/global_step=(\d+), "
                      r"RunningAvgSamplesPerSec=([0-9.e+-]+), CurrSamplesPerSec=([0-9.e+-]+), "
                      r"MemAllocated=([0-9.]+)GB, MaxMemAllocated=([0-9.]+)GB$")
global_re = re.compile(r"Global Steps: (\d+) .* LR: ([0-9.]+) ")
def parse(path):
    """Step lines as (step, skipped, lrs, OVERFLOW lines before it, the next train line's step and LR)."""
    steps, timers, overflows, pending = [], [], 0, []
    for line in open(path):
        line = line.rstrip("\n")
        if "OVERFLOW!" in line: overflows += 1
        m = global_re.search(line)
        if m:
            for p in pending: p.extend([int(m.group(1)), m.group(2)])
            pending = []
        m = step_re.match(line)
        if m:
            lrs = [float(x) for x in m.group(3).split(", ")]
            assert m.group(4) == ", ".join(["[0.9, 0.98]"] * len(lrs)), m.group(4)[:80]
            steps.append([int(m.group(1)), int(m.group(2)), lrs, overflows])
            pending.append(steps[-1])
        m = timer_re.match(line)
        if m:
            timers.append((int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4)),
                           float(m.group(5)), float(m.group(6))))
    return steps, timers
first_steps, first_timers = parse(sys.argv[1])
res_steps, res_timers = parse(sys.argv[2])
# At start: step 0, every group's base lr (1e-3 for every tower here), before any Global Steps line.
for steps, first_train_line in ((first_steps, 1), (res_steps, 10)):
    s0 = steps[0]
    assert s0[0] == 0 and s0[1] == 0 and s0[4] == first_train_line and set(s0[2]) == {1e-3}, s0[:2] + s0[3:]
# Then at engine steps 4 and 8 (first run), 12 (resumed; its own steps are 10..12), each after its step's
# optimizer step and before its train line (EVA-CLIP logs after model.step()), with the OVERFLOW lines
# seen so far (a scale of 2^126 overflows even fp32 gradients at first).
assert [s[0] for s in first_steps[1:]] == [4, 8], [s[0] for s in first_steps]
assert [s[0] for s in res_steps[1:]] == [12], [s[0] for s in res_steps]
for s in first_steps[1:] + res_steps[1:]:
    assert s[4] == s[0], ("the step line is not right before its step's train line", s[0], s[4])
    assert "%.6f" % s[2][0] == s[5], ("the first group's lr is not the train line's LR", s[2][0], s[5])
for s in first_steps[1:]:
    assert s[1] == s[3], ("skipped", s[1], "overflow lines", s[3])
assert first_steps[-1][1] >= 1, "expected the scale of 2^126 to overflow"
assert res_steps[-1][1] == first_steps[-1][1] + res_steps[-1][3], "the skipped count was not restored on resume"
# The timer: its own steps 4 and 8; the resumed run's count reaches 3, so it prints none.
assert [(t[0], t[1]) for t in first_timers] == [(4, 4), (8, 8)], first_timers
assert res_timers == [], res_timers
for t in first_timers:
    assert t[2] > 0 and t[3] > 0, t
    assert 0 <= t[4] <= t[5] and t[5] > 0, ("MemAllocated above its maximum", t)
print("progress lines: steps %s, skipped %s, timer %s" % ([s[0] for s in first_steps + res_steps],
      [s[1] for s in first_steps + res_steps], [(t[0], t[4], t[5]) for t in first_timers]))
PYEOF
finish
