"""Compares every scalar of a `loom train --tensorboard-dir` event file with the run's log lines, each to
the precision the log prints it (plus float32's rounding: TensorBoard's simple_value is a float).
usage: tensorboard_vs_log.py LOG MEGATRON_DIR [--interval N] [--deepspeed DIR] [--no-lr] [--world N]
(--world N: the run had N ranks; the last one writes the events, so its memory line is the one compared)
Run with --log-interval 1, so each iteration line holds that iteration's loss and timers."""
import math
import re
import sys

from tfevents import read_dir, scalars

args = sys.argv[1:]
log_path, tb_dir = args[0], args[1]
interval = int(args[args.index('--interval') + 1]) if '--interval' in args else 1
ds_dir = args[args.index('--deepspeed') + 1] if '--deepspeed' in args else None
want_lr = '--no-lr' not in args
world = int(args[args.index('--world') + 1]) if '--world' in args else 1
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def close(value, printed):
    """value (read back as float32) equals the printed text to its printed precision."""
    m = re.fullmatch(r'-?\d+(?:\.(\d+))?(?:E([+-]\d+))?', printed)
    places = len(m.group(1) or '')
    exp = int(m.group(2) or 0)
    ulp = 10.0 ** (exp - places)
    return abs(value - float(printed)) <= ulp / 2 + abs(value) * 1.2e-7 + 1e-12


# The log.
its, timers, memory, valid = {}, {}, None, []
last_it = None
for line in open(log_path):
    m = re.search(r'iteration +(\d+)/ *\d+ \| consumed samples: +(\d+) \| elapsed time per iteration \(ms\): ([\d.]+) \|'
                  r'.* learning rate: (\S+) \| global batch size: +(\d+) \|(?: lm loss: (\S+) \|)? loss scale: ([\d.]+) \|'
                  r'(?: grad norm: ([\d.]+) \|)?', line)
    if m:
        last_it = int(m.group(1))
        its[last_it] = dict(samples=int(m.group(2)), elapsed=m.group(3), lr=m.group(4), gbs=m.group(5), loss=m.group(6),
                            scale=m.group(7), grad=m.group(8))
        continue
    if line.startswith('time (ms) |') and last_it is not None and last_it not in timers:
        timers[last_it] = dict(kv.split(': ') for kv in line.strip().split(' | ')[1:])
        continue
    m = re.match(r'\[Rank %d\] \(after (\d+) iterations\)' % (world - 1) + r' memory \(MB\) \| allocated: (\S+) \| max allocated: (\S+) \| '
                 r'reserved: (\S+) \| max reserved: (\S+)', line)
    if m:
        memory = (int(m.group(1)), m.group(2), m.group(3), m.group(4))
        continue
    m = re.search(r' validation loss at .* \| lm loss value: (\S+) \| lm loss PPL: (\S+) \| ', line)
    if m:
        valid.append((last_it, its[last_it]['samples'], m.group(1), m.group(2)))
check(len(its) >= 4 and timers and valid, 'the log has iterations, timers and validation lines')
# Megatron's memory line comes from the first data-parallel replica: with data parallelism the last rank
# prints none, and its memory scalars are only checked for steps and sign.
check(memory or world > 1, 'the log has the memory line')

tb = scalars(read_dir(tb_dir))
seen = set()


def series(tag):
    seen.add(tag)
    return tb.get(tag, [])


def compare_iterations(tag, field, present=lambda i: True):
    """tag at every due iteration where present(i), and its 'vs samples' twin, against the log where the
    log shows the field."""
    due = [i for i in sorted(its) if i % interval == 0 and present(i)]
    for name, step_of in ((tag, lambda i: i), (tag + ' vs samples', lambda i: its[i]['samples'])):
        got = series(name)
        check([s for s, _ in got] == [step_of(i) for i in due], '%s: steps %s' % (name, [s for s, _ in got][:12]))
        for (s, v), i in zip(got, due):
            if its[i][field] is not None:
                check(close(v, its[i][field]), '%s at %d: %r vs log %s' % (name, s, v, its[i][field]))


if want_lr:
    compare_iterations('learning-rate', 'lr')
compare_iterations('batch-size', 'gbs')
compare_iterations('loss-scale', 'scale')
# Megatron writes the loss of skipped iterations too (finite here: only the gradients overflowed); the
# log shows a loss only for applied ones.
compare_iterations('lm loss', 'loss')
check(all(math.isfinite(v) and v > 0 for _, v in tb.get('lm loss', [])), 'lm loss values')
compare_iterations('grad-norm', 'grad', present=lambda i: its[i]['grad'] is not None)
check(any(its[i]['grad'] is None for i in its) and any(its[i]['grad'] for i in its),
      'the run has both skipped and applied iterations')
for name in ('world-size', 'world-size vs samples'):
    got = series(name)
    check(len(got) == len([i for i in its if i % interval == 0]) and all(v == world for _, v in got), name)

# Timers (seconds, as Megatron's timers.write) and iteration-time, at every log interval.
timer_names = set(n for t in timers.values() for n in t)
for name in timer_names:
    got = dict(series(name + '-time'))
    for i in sorted(its):
        if i % interval == 0 and name in timers[i]:
            check(i in got and close(got[i] * 1000, timers[i][name]),
                  '%s-time at %d: %r vs log %s ms' % (name, i, got.get(i), timers[i][name]))
got = series('iteration-time')
check([s for s, _ in got] == sorted(its), 'iteration-time steps')
for s, v in got:
    check(close(v * 1000, its[s]['elapsed']), 'iteration-time at %d: %r vs log %s ms' % (s, v, its[s]['elapsed']))

# Memory, at the iteration of the memory line: tensor bytes exactly as printed, the resident set near it.
it, alloc, max_alloc, reserved = memory or (-1, None, None, None)
for tag in ('mem-allocated-bytes', 'mem-max-allocated-bytes', 'mem-reserved-bytes'):
    got = series(tag)
    check([s for s, _ in got] == [i for i in sorted(its) if i % interval == 0], '%s steps' % tag)
    check(all(v > 0 for _, v in got), '%s values' % tag)
if memory and it % interval == 0:
    for tag, printed in (('mem-allocated-bytes', alloc), ('mem-max-allocated-bytes', max_alloc)):
        got = dict(series(tag))
        check(it in got and close(got[it] / 1048576.0, printed), '%s at %d: %r vs log %s MB' % (tag, it, got.get(it), printed))
    got = dict(series('mem-reserved-bytes'))
    check(it in got and abs(got[it] / 1048576.0 - float(reserved)) < 0.1 * float(reserved),
          'mem-reserved-bytes at %d: %r vs log %s MB' % (it, got.get(it), reserved))

# Validation (and, as Megatron since 2023, the test loss) in the order of the log's blocks.
for tag, k in (('lm loss validation', 2), ('lm loss validation ppl', 3)):
    for name, step_k in ((tag, 0), (tag + ' vs samples', 1)):
        got = series(name)
        check([s for s, _ in got] == [v[step_k] for v in valid], '%s: steps %s' % (name, [s for s, _ in got]))
        for (s, v), block in zip(got, valid):
            check(close(v, block[k]), '%s at %d: %r vs log %s' % (name, s, v, block[k]))

extra = set(tb) - seen
check(not extra, 'tags the log does not account for: %s' % sorted(extra))

if ds_dir:
    ds = scalars(read_dir(ds_dir))
    check(set(ds) == {'Train/Samples/train_loss', 'Train/Samples/lr', 'Train/Samples/loss_scale'}, 'DeepSpeed tags %s' % set(ds))
    gbs = int(its[min(its)]['gbs'])
    for tag, field, offset in (('Train/Samples/lr', 'lr', 0), ('Train/Samples/loss_scale', 'scale', 0),
                               ('Train/Samples/train_loss', 'loss', -gbs)):
        got = ds.get(tag, [])
        check([s for s, _ in got] == [its[i]['samples'] + offset for i in sorted(its)], '%s steps' % tag)
        for (s, v), i in zip(got, sorted(its)):
            if its[i][field] is not None:
                check(close(v, its[i][field]), '%s at %d: %r vs log %s' % (tag, s, v, its[i][field]))

n = sum(len(v) for v in tb.values())
if failures:
    print('\n'.join('FAIL: ' + f for f in failures[:40]))
    sys.exit(1)
print('%d scalars under %d tags match the log (%d iterations, %d validation blocks)' % (n, len(tb), len(its), len(valid)))
