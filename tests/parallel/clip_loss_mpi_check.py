"""test_clip_loss_mpi.sh's checks: ClipLoss on 2 and 4 ranks (real processes under mpirun) against
  - real torch.distributed processes (gloo) running open_clip's ClipLoss(local_loss=True,
    gather_with_grad=True): every rank's local loss, its terms, and its own (pre-averaging) latent and
    logit-scale gradients;
  - one PyTorch process on the whole batch: the mean of the ranks' losses, the data-parallel AVERAGE of
    the tower weight and logit-scale gradients, and the ranks' latent gradients divided by the number of
    ranks (torch.distributed.nn's all-gather backward sums over ranks).
All within 1e-5 relative.  usage: clip_loss_mpi_check.py MPIRUN DRIVER TMPDIR
"""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_loss_ref as ref  # noqa: E402

TOL = 1e-5
mpirun, driver, tmp = sys.argv[1:4]
failures = []


def check(name, got, want, tol=TOL):
    e = ref.rel(got, want)
    if e > tol:
        failures.append(name)
    print("%-52s rel %.2e %s" % (name, e, "ok" if e <= tol else "FAIL"))


def case(name, c, R, grad_scale):
    inp, out = os.path.join(tmp, name + ".in"), os.path.join(tmp, name + ".out")
    ref.write_case(c, inp)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    subprocess.run(["timeout", "-k", "5", "120", mpirun, "--oversubscribe", "-np", str(R), driver, inp, out,
                    repr(grad_scale)], check=True, env=env)
    o = ref.read_output(out, c, R)
    one = ref.one_process(c, grad_scale, R)
    dist = ref.distributed(c, grad_scale, R)
    b = c["N"] // R
    for r in range(R):
        st, rows, tag = o["stats"][r], slice(r * b, (r + 1) * b), "%s rank %d: " % (name, r)
        check(tag + "loss = torch.distributed local loss", st[0], dist[r]["loss"])
        loss, l_i2t, l_t2i, i2t_acc, t2i_acc, scale = one["per_rank"][r]
        check(tag + "loss_i2t, loss_t2i", st[1:3], [l_i2t, l_t2i])
        check(tag + "i2t_acc, t2i_acc", st[3:5], [i2t_acc, t2i_acc], 1e-7)
        check(tag + "logit_scale", st[5], scale)
        check(tag + "d_img = torch.distributed", o["d_img"][rows], dist[r]["d_img"])
        check(tag + "d_txt = torch.distributed", o["d_txt"][rows], dist[r]["d_txt"])
        check(tag + "d_logit_scale_param = torch.distributed", st[6] - c["d_param_init"], dist[r]["d_param"])
    tag = "%s DP %d vs one process: " % (name, R)
    check(tag + "mean of rank losses", o["stats"][:, 0].mean(dtype=np.float64), one["loss"])
    check(tag + "averaged dW_img", o["dW_img"], one["dW_img"])
    check(tag + "averaged dW_txt", o["dW_txt"], one["dW_txt"])
    check(tag + "averaged d_logit_scale_param", o["d_param"], one["d_param"])
    check(tag + "d_img / R", o["d_img"] / R, one["d_img"])
    check(tag + "d_txt / R", o["d_txt"] / R, one["d_txt"])


for R in (2, 4):
    case("random", ref.make_case(32, 16, 12, seed=10 + R, d_param_init=0.25), R, 0.5)
# Matched pairs at scale 100 (confident rows, nonzero accuracies) and a local batch of 1 on 4 ranks.
c = ref.make_case(16, 8, 8, seed=20, param=np.log(100.0))
c["W_txt"] = c["W_img"].copy()
c["f_txt"] = (c["f_img"] + np.float32(1.0) * np.random.default_rng(21).standard_normal(c["f_img"].shape)).astype(np.float32)
case("matched", c, 2, 1.0)
case("b1", ref.make_case(4, 8, 6, seed=30), 4, 1.0)
if failures:
    print("FAILED:", ", ".join(failures))
    sys.exit(1)
print("clip loss: every rank equals torch.distributed, the DP average equals one process")
