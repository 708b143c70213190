#!/usr/bin/python3
"""CoCa's contrastive loss (src/loom/models/coca/clip_loss.h) in one process against PyTorch.

The driver ($LOOM_BUILD_DIR/tests/clip_loss_driver, see tests/parallel/clip_loss_driver.cpp) runs
ClipLoss behind two linear towers; the reference (tests/parallel/clip_loss_ref.py) is open_clip's
ClipLoss on F.normalize'd latents and logit_scale.exp(), in float64 on the same float32 inputs. Checked
within 1e-5 relative: the loss and its two terms, the accuracies, exp(param), the latent gradients, the
tower weight gradients and the logit-scale gradient (accumulated onto a nonzero initial value). Also:
a latent with norm below F.normalize's eps (its clamp), a saturated scale (ln 100), results bitwise equal
for 1 and 2 threads, and a step repeated on the same buffers equal to one step.
Exit codes: 0 pass, 1 mismatch, 77 driver not built.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "parallel"))
import clip_loss_ref as ref  # noqa: E402

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
DRIVER = os.path.join(BUILD, "tests", "clip_loss_driver")
TOL = 1e-5
failures = []


def check(name, got, want, tol=TOL):
    e = ref.rel(got, want)
    ok = e <= tol
    print("%-44s rel %.2e %s" % (name, e, "ok" if ok else "FAIL"))
    if not ok:
        failures.append(name)


def run(c, tmp, grad_scale, threads=2, repeat=1, tag="run"):
    inp, out = os.path.join(tmp, tag + ".in"), os.path.join(tmp, tag + ".out")
    ref.write_case(c, inp)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run([DRIVER, inp, out, repr(grad_scale), str(repeat)], check=True, env=env)
    return ref.read_output(out, c, 1), open(out, "rb").read()


def compare(name, c, o, grad_scale, skip_rows=()):
    r = ref.one_process(c, grad_scale, 1)
    loss, l_i2t, l_t2i, i2t_acc, t2i_acc, scale = r["per_rank"][0]
    st = o["stats"][0]
    check(name + ": loss", st[0], loss)
    check(name + ": loss_i2t", st[1], l_i2t)
    check(name + ": loss_t2i", st[2], l_t2i)
    check(name + ": i2t_acc", st[3], i2t_acc, 1e-7)  # hit counts over b; a miss would be >= 1/b
    check(name + ": t2i_acc", st[4], t2i_acc, 1e-7)
    check(name + ": logit_scale", st[5], scale)
    check(name + ": d_logit_scale_param", o["d_param"], r["d_param"])
    keep = [i for i in range(c["N"]) if i not in skip_rows]
    for k in ("d_img", "d_txt"):
        check(name + ": " + k, o[k][keep], r[k][keep])
        for i in skip_rows:  # rows of another magnitude are compared on their own
            check(name + ": %s row %d" % (k, i), o[k][i], r[k][i])
    for k in ("dW_img", "dW_txt"):
        check(name + ": " + k, o[k], r[k])
    return r


def main():
    if not os.path.exists(DRIVER):
        print("driver not built:", DRIVER)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        c = ref.make_case(16, 8, 12, seed=1, d_param_init=0.75)
        o, _ = run(c, tmp, 0.5)
        compare("random 16x8", c, o, 0.5)

        # Image latents 2 and 5 below the 1e-12 clamp: normalised to x / 1e-12, gradient d / 1e-12.
        c = ref.make_case(12, 6, 10, seed=2, tiny_rows=(2, 5))
        o, _ = run(c, tmp, 1.0)
        compare("norm below eps", c, o, 1.0, skip_rows=(2, 5))

        # Matched pairs (text = image plus noise, same tower): most rows are hits, so the accuracies and
        # a confident softmax are exercised; logit scale at its clamp ln(100).
        c = ref.make_case(24, 8, 8, seed=3, param=np.log(100.0))
        c["W_txt"] = c["W_img"].copy()
        noise = np.random.default_rng(4).standard_normal(c["f_img"].shape).astype(np.float32)
        c["f_txt"] = (c["f_img"] + np.float32(0.3) * noise).astype(np.float32)
        o, _ = run(c, tmp, 2.0)
        r = compare("matched pairs, scale 100", c, o, 2.0)
        if not (0.5 <= r["per_rank"][0][3] < 1.0):
            failures.append("matched pairs: the case should have some misses and mostly hits")

        # A batch big enough for threaded row loops and GEMM grids: bitwise equal for 1 and 2 threads,
        # and three steps on the same buffers equal one.
        c = ref.make_case(384, 48, 32, seed=5)
        o1, b1 = run(c, tmp, 1.0, threads=1, tag="t1")
        _, b2 = run(c, tmp, 1.0, threads=2, tag="t2")
        _, b3 = run(c, tmp, 1.0, threads=2, repeat=3, tag="rep")
        compare("384x48", c, o1, 1.0)
        for name, other in (("2 threads", b2), ("repeated step", b3)):
            same = other == b1
            print("%-44s %s" % ("384x48: bitwise equal, " + name, "ok" if same else "FAIL"))
            if not same:
                failures.append(name)
    if failures:
        print("FAILED:", ", ".join(failures))
        return 1
    print("clip loss parity: all checks pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
