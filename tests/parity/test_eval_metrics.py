#!/usr/bin/python3
"""Evaluation (src/loom/eval) against EVA-CLIP's own code, re-run here in PyTorch / numpy:
  - retrieval: get_metrics() (training/train.py): the per-row positions of the ground truth in
    torch.argsort(descending=True) must be EQUAL (ties included: embeddings of +-1/4 give exact scores with
    many ties), and the EVA-CLIP line `Eval Epoch: ...` equal byte for byte; random embeddings with
    near-ties; odd and even n (the median);
  - zero-shot classifier (zero_shot.py zero_shot_classifier): the texts each embed call gets, and W
    within 1e-6; str.format's escapes and a class name holding braces;
  - zero-shot accuracy (zero_shot.py run/accuracy): the torch.topk(5) indices equal on tie-heavy exact
    logits (both of topk's code paths: nth_element for C < 320, partial_sort above), a data set whose
    answer is known (top-1 0.5, top-5 1.0), batching, fewer than 5 classes;
  - round(v, 4):.4f for Python floats, ints and numpy float64 (which round differently);
  - bad input: a template field other than {}, a target outside the classes: one `loom: error:` line,
    exit code 2.
Exit codes: 0 pass, 1 mismatch, 77 driver not built.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
DRIVER = os.path.join(BUILD, "tests", "eval_driver")
failures = []


def ok(name, cond, detail=""):
    print("%-66s %s %s" % (name, "ok" if cond else "FAIL", "" if cond else detail))
    if not cond:
        failures.append(name)


def drive(*args, expect=0):
    p = subprocess.run([DRIVER] + [str(a) for a in args], capture_output=True, text=True)
    if p.returncode != expect:
        raise RuntimeError("eval_driver %s: exit %d: %s" % (args[0], p.returncode, p.stderr))
    return p


def eva_line(epoch, metrics):
    """training/train.py evaluate(): the metrics dict as EVA-CLIP logs it."""
    return f"Eval Epoch: {epoch} " + "\t".join([f"{k}: {round(v, 4):.4f}" for k, v in metrics.items()])


def get_metrics(image_features, text_features, logit_scale):
    """EVA-CLIP's get_metrics, verbatim in substance; also returns the preds."""
    metrics, all_preds = {}, {}
    logits_per_image = (logit_scale * image_features @ text_features.t()).detach().cpu()
    logits_per_text = logits_per_image.t().detach().cpu()
    logits = {"image_to_text": logits_per_image, "text_to_image": logits_per_text}
    ground_truth = torch.arange(len(text_features)).view(-1, 1)
    for name, logit in logits.items():
        ranking = torch.argsort(logit, descending=True)
        preds = torch.where(ranking == ground_truth)[1]
        preds = preds.detach().cpu().numpy()
        all_preds[name] = preds
        metrics[f"{name}_mean_rank"] = preds.mean() + 1
        metrics[f"{name}_median_rank"] = np.floor(np.median(preds)) + 1
        for k in [1, 5, 10]:
            metrics[f"{name}_R@{k}"] = np.mean(preds < k)
    return metrics, all_preds


def retrieval_case(tmp, name, img, txt, scale, epoch=3, val_loss=1.2345678, num_samples=None):
    n, E = img.shape
    num_samples = n if num_samples is None else num_samples
    inp, out = os.path.join(tmp, "r.in"), os.path.join(tmp, "r.out")
    with open(inp, "wb") as f:
        f.write(struct.pack("<2if", n, E, scale))
        f.write(img.astype("<f4").tobytes())
        f.write(txt.astype("<f4").tobytes())
    p = drive("retrieval", inp, out, epoch, float(val_loss).hex(), num_samples)
    got = np.fromfile(out, dtype="<i8")
    metrics, preds = get_metrics(torch.from_numpy(img), torch.from_numpy(txt), torch.tensor(scale, dtype=torch.float32))
    ok(name + ": image_to_text positions equal torch.argsort's", np.array_equal(got[:n], preds["image_to_text"]))
    ok(name + ": text_to_image positions equal torch.argsort's", np.array_equal(got[n:], preds["text_to_image"]))
    metrics.update({"val_loss": val_loss, "epoch": epoch, "num_samples": num_samples})
    want = eva_line(epoch, metrics)
    lines = p.stdout.split("\n")
    ok(name + ": Eval Epoch line", lines[0] == want, "\n  got  %r\n  want %r" % (lines[0], want))
    want = json.dumps(metrics)  # results.jsonl
    ok(name + ": results.jsonl line", lines[1] == want, "\n  got  %r\n  want %r" % (lines[1], want))
    return preds


def hash_embed(texts, E):
    """eval_driver's stand-in text tower (exact integer sums)."""
    out = np.zeros((len(texts), E), dtype=np.float32)
    for t, s in enumerate(texts):
        for p, c in enumerate(s.encode()):
            out[t, (c + 3 * p) % E] += np.float32(c % 7 - 3)
    return out


def zeroshot_case(tmp, name, W, img, targets, batch, epoch=0, check_indices=True):
    E, C = W.shape
    n = img.shape[0]
    inp, out = os.path.join(tmp, "z.in"), os.path.join(tmp, "z.out")
    with open(inp, "wb") as f:
        f.write(struct.pack("<3i", n, E, C))
        f.write(W.astype("<f4").tobytes())
        f.write(img.astype("<f4").tobytes())
        f.write(np.asarray(targets, dtype="<i4").tobytes())
    p = drive("zeroshot", inp, out, epoch, batch)
    k = min(5, C)
    got = np.fromfile(out, dtype="<i8").reshape(n, k)
    # zero_shot.py run(): logits = 100. * F.normalize(image_features) @ classifier; accuracy() on topk
    logits = 100. * F.normalize(torch.from_numpy(img), dim=-1) @ torch.from_numpy(W)
    pred = logits.topk(k, 1, True, True)[1]
    if check_indices:  # not where scores tie up to GEMM rounding (the order there is rounding noise)
        ok(name + ": torch.topk(%d) indices equal" % k, np.array_equal(got, pred.numpy()))
    target = torch.from_numpy(np.asarray(targets, dtype=np.int64))
    correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
    top1 = float(correct[:1].reshape(-1).float().sum(0, keepdim=True).cpu().numpy()) / n
    top5 = float(correct[:5].reshape(-1).float().sum(0, keepdim=True).cpu().numpy()) / n
    want = eva_line(epoch, {"epoch": int(epoch), "imagenet-zeroshot-val-top1": top1, "imagenet-zeroshot-val-top5": top5})
    ok(name + ": Eval Epoch line", p.stdout.rstrip("\n") == want, "\n  got  %r\n  want %r" % (p.stdout, want))
    return p.stdout.rstrip("\n")


def main():
    if not os.path.exists(DRIVER):
        print("driver not built:", DRIVER)
        return 77
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        # --- retrieval ---
        # +-1 in 16 dimensions: normalised to exactly +-1/4, scores multiples of 100/16: many exact ties,
        # also with the ground truth (some texts are copies of other rows' texts).
        for n in (64, 63):
            img = rng.choice([-1.0, 1.0], size=(n, 16)).astype(np.float32)
            txt = img.copy()
            flip = rng.random((n, 16)) < 0.3
            txt[flip] *= -1
            txt[5] = txt[9]
            txt[20:24] = txt[30]
            img, txt = F.normalize(torch.from_numpy(img), dim=-1).numpy(), F.normalize(torch.from_numpy(txt), dim=-1).numpy()
            assert np.all(np.abs(img) == 0.25)
            preds = retrieval_case(tmp, "ties n=%d" % n, img, txt, 100.0, epoch=n % 2, val_loss=rng.random() * 5)
            assert len(set(preds["image_to_text"])) > 5  # not degenerate
        # Random embeddings with near-ties (1e-3 apart, far above GEMM rounding), scale exp(2.6593).
        n, E = 200, 32
        img = rng.standard_normal((n, E)).astype(np.float32)
        txt = (img + 1.5 * rng.standard_normal((n, E))).astype(np.float32)
        txt[50] = txt[49] + 1e-3 * rng.standard_normal(E).astype(np.float32)
        img = F.normalize(torch.from_numpy(img), dim=-1).numpy()
        txt = F.normalize(torch.from_numpy(txt), dim=-1).numpy()
        retrieval_case(tmp, "random n=200", img, txt, float(np.float32(np.exp(2.6593))), epoch=12, num_samples=200)

        # --- zero-shot classifier ---
        classes = ["red square", "blue circle", "x{}y", "two green triangles"]
        templates = ["a photo of a {}.", "itap of the {}.", "{} {{braces}}", "{}", "no field"]
        cfg = os.path.join(tmp, "cls.json")
        json.dump({"E": 24, "classnames": classes, "templates": templates}, open(cfg, "w"))
        p = drive("classifier", cfg, os.path.join(tmp, "W.bin"))
        calls = [c.strip("\n").split("\n") for c in p.stdout.split("--\n") if c.strip("\n")]
        want_calls = [[t.format(c) for t in templates] for c in classes]
        ok("classifier: one embed call per class with str.format's texts", calls == want_calls, str(calls[:1]))
        W = np.fromfile(os.path.join(tmp, "W.bin"), dtype="<f4").reshape(24, len(classes))
        ws = []
        for c in classes:  # zero_shot.py zero_shot_classifier
            emb = torch.from_numpy(hash_embed([t.format(c) for t in templates], 24))
            ce = F.normalize(emb, dim=-1).mean(dim=0)
            ce /= ce.norm()
            ws.append(ce)
        W_ref = torch.stack(ws, dim=1).numpy()
        err = float(np.max(np.abs(W - W_ref)))
        ok("classifier: W [E, C] equals EVA-CLIP's within 1e-6 (max %.1e)" % err, err <= 1e-6)

        # --- zero-shot accuracy ---
        for C, label in ((10, "nth_element path"), (400, "partial_sort path")):
            Wt = rng.choice([-0.5, -0.25, 0.0, 0.25, 0.5], size=(16, C)).astype(np.float32)
            im = rng.choice([-1.0, 1.0], size=(60, 16)).astype(np.float32)
            im[10:20] = im[0]  # repeated images: identical tied rows
            tg = rng.integers(0, C, size=60)
            logits = 100. * F.normalize(torch.from_numpy(im), dim=-1) @ torch.from_numpy(Wt)
            tied = sum(len(torch.unique(r)) < C for r in logits)
            assert tied >= 30, tied  # ties present in most rows
            zeroshot_case(tmp, "ties C=%d (%s)" % (C, label), Wt, im, tg, batch=60)
            zeroshot_case(tmp, "ties C=%d batches of 7" % C, Wt, im, tg, batch=7, epoch=2)
        # Known answer (orthonormal classes): even images are their class's direction; odd ones point to
        # the next class with their own class second (score 0.5, the rest about 0). top-1 0.5, top-5 1.
        C, E = 20, 32
        Wk = np.linalg.qr(rng.standard_normal((E, C)))[0].astype(np.float32)  # orthonormal class columns
        tg = np.arange(40) % C
        im = np.stack([Wk[:, t] if i % 2 == 0 else Wk[:, (t + 1) % C] + 0.5 * Wk[:, t] for i, t in enumerate(tg)])
        line = zeroshot_case(tmp, "known answer", Wk, (3.0 * im).astype(np.float32), tg, batch=16, epoch=1,
                             check_indices=False)
        ok("known answer: top-1 0.5, top-5 1.0",
           line == "Eval Epoch: 1 epoch: 1.0000\timagenet-zeroshot-val-top1: 0.5000\timagenet-zeroshot-val-top5: 1.0000",
           line)
        W3 = rng.standard_normal((8, 3)).astype(np.float32)
        zeroshot_case(tmp, "3 classes (top-k of 3)", W3, rng.standard_normal((12, 8)).astype(np.float32),
                      rng.integers(0, 3, size=12), batch=12)

        # --- round(v, 4):.4f by type ---
        vals = [0.03125, 0.00005, 1.00005, 2.50005, 0.99995, 9.99995, 0.12345, 1e-5, -1e-5, 123.45675, 0.0,
                0.28125, 0.15625, 0.40625] + [k / n for n in (7, 31, 96, 160, 1000, 3125) for k in range(0, n + 1, 3)]
        vals += list(rng.random(300) * 10)
        for kind in ("py", "numpy", "int"):
            vv = [float(round(v * 1000)) for v in vals] if kind == "int" else vals
            p = drive("format", kind, *[float(v).hex() for v in vv])
            conv = {"py": float, "numpy": np.float64, "int": lambda v: int(v)}[kind]
            want = [f"{round(conv(v), 4):.4f}" for v in vv]
            got = p.stdout.split("\n")[:-1]
            bad = [(v, g, w) for v, g, w in zip(vv, got, want) if g != w]
            ok("round(v, 4):.4f for %s values (%d)" % (kind, len(vv)), not bad and len(got) == len(want), str(bad[:3]))
        differ = [v for v in vals if f"{round(float(v), 4):.4f}" != f"{round(np.float64(v), 4):.4f}"]
        ok("the case set has values where numpy and Python round differently (%d)" % len(differ), len(differ) > 0)
        rv = [1e-5, 1e-4, 0.0001234, 1e16, 1e15, 9999999999999998.0, 123456789012345678.0, 5e-324,
              1.7976931348623157e308, -0.0, 0.0, 0.1, 2 / 3, -1.5, 100.0, 3.0, 0.5, 1 / 3e5]
        rv += [float(x) for x in rng.standard_normal(200) * 10.0 ** rng.integers(-30, 30, 200)]
        p = drive("repr", *[v.hex() for v in rv])
        bad = [(v, g) for v, g in zip(rv, p.stdout.split("\n")) if g != repr(v)]
        ok("Python float repr (%d values)" % len(rv), not bad, str(bad[:3]))
        p = drive("progress", 4, 300, 1000, (2.5 / 3).hex())
        want = f"Eval Epoch: {4} [{300} / {1000}]\t" f"Loss: {torch.tensor(2.5 / 3):.6f}\t"
        ok("progress line", p.stdout.rstrip("\n") == want, repr(p.stdout))

        # --- templates and bad input ---
        for t, c in (("a {} of {{x}}", "cat"), ("}}{{{}", "b")):
            ok("template %r" % t, drive("template", t, c).stdout.rstrip("\n") == t.format(c))
        for t in ("a {0} photo", "a {name}", "lone { brace", "lone } brace", "a {}, a {}"):
            p = drive("template", t, "cat", expect=2)
            lines = p.stderr.strip("\n").split("\n")
            ok("bad template %r: one error line, exit 2" % t,
               len(lines) == 1 and lines[0].startswith("loom: error: zero-shot template '%s'" % t), p.stderr)
        inp = os.path.join(tmp, "bad.in")
        with open(inp, "wb") as f:
            f.write(struct.pack("<3i", 2, 4, 3))
            f.write(np.ones((4, 3), "<f4").tobytes() + np.ones((2, 4), "<f4").tobytes())
            f.write(np.array([1, 3], "<i4").tobytes())
        p = drive("zeroshot", inp, os.path.join(tmp, "bad.out"), 0, 2, expect=2)
        ok("target outside the classes: one error line, exit 2",
           p.stderr == "loom: error: zero-shot target 3 outside the 3 classes\n", p.stderr)
    if failures:
        print("FAILED:", ", ".join(failures))
        return 1
    print("evaluation metrics: all checks pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
