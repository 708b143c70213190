#!/usr/bin/python3
"""Loom's image decode and transforms against PIL (Debian's python3-pil, libjpeg-turbo) and torchvision.

  1. Decode: JPEG (4:2:0, 4:4:4, progressive, grey, CMYK) and PNG (RGB, grey, 1-bit, palette with and
     without transparency, RGBA, LA, 16-bit grey) written by PIL with odd sizes;
     Loom's RGB equals Image.open(f).convert("RGB") byte for byte. Missing, empty, truncated, corrupt,
     non-image files and directories: a failure naming the path, never a crash.
  2. Train transform: for given crop parameters (downscaling, upscaling, one side unchanged, both
     unchanged, edge crops, 1-pixel crops, and crops drawn by Loom's RandomResizedCrop) the uint8 result
     equals torchvision.transforms.functional.resized_crop(pil, top, left, h, w, size, BICUBIC) exactly
     and to_tensor + normalize(CLIP mean/std) within 1e-5 (in fact bitwise).
  3. Eval transform: Resize(size, BICUBIC) + CenterCrop(size), exact on uint8, 1e-5 after normalize.
  4. RandomResizedCrop parameters: deterministic per (seed, epoch, index), different across epochs,
     within torchvision's bounds, scale/ratio spread as uniform/log-uniform, and the fallback branch
     (no try fits) equal to torchvision's get_params.
Needs $LOOM_BUILD_DIR (tests/image_transform_driver built). Exits non-zero on failure.
"""

import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
import torchvision.transforms as T
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
DRIVER = os.path.join(BUILD, "tests", "image_transform_driver")
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def scene(w, h, seed):
    """A photo-like RGB array: smooth gradients, a few edges and noise (so JPEG and bicubic both work)."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 6, 2).tolist() + [rng.uniform(0, 6)]
        img[..., c] = 127 + 90 * np.sin(fx * x / w * math.pi + ph) * np.cos(fy * y / h * math.pi)
    for _ in range(4):  # hard-edged rectangles: ringing of the bicubic kernel makes values clip
        x0, y0 = rng.randint(0, w), rng.randint(0, h)
        img[y0:y0 + rng.randint(1, h // 2 + 2), x0:x0 + rng.randint(1, w // 2 + 2)] = rng.choice([0, 255], 3)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_inputs(d):
    files = {}

    def save(name, im, **kw):
        path = os.path.join(d, name)
        im.save(path, **kw)
        files[name] = path

    rgb = Image.fromarray(scene(500, 375, 1))
    save("rgb420.jpg", rgb, quality=90)
    save("rgb444.jpg", Image.fromarray(scene(333, 517, 2)), quality=95, subsampling=0)
    save("progressive.jpg", Image.fromarray(scene(301, 203, 3)), quality=80, progressive=True)
    save("grey.jpg", Image.fromarray(scene(257, 199, 4)).convert("L"), quality=85)
    save("cmyk.jpg", Image.fromarray(scene(161, 97, 5)).convert("CMYK"), quality=90)
    save("small.jpg", Image.fromarray(scene(37, 23, 6)), quality=90)
    save("rgb.png", Image.fromarray(scene(123, 77, 7)))
    save("grey.png", Image.fromarray(scene(99, 141, 8)).convert("L"))
    save("bilevel.png", Image.fromarray(scene(64, 45, 9)).convert("1"))
    pal = Image.fromarray(scene(150, 100, 10)).convert("P", palette=Image.ADAPTIVE, colors=13)
    save("palette.png", pal)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 3
    save("palette_trns.png", pal_t, transparency=3)
    rgba = Image.fromarray(np.dstack([scene(211, 113, 11), scene(211, 113, 12)[..., 0]]), "RGBA")
    save("rgba.png", rgba)
    save("la.png", rgba.convert("LA"))
    grey16 = Image.fromarray((scene(70, 50, 13)[..., 0].astype(np.uint16) * 3), "I;16")
    save("grey16.png", grey16)
    return files


def run_driver(*args, check_rc=True):
    r = subprocess.run([DRIVER, *map(str, args)], capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"driver {args}: rc {r.returncode}: {r.stdout}{r.stderr}")
    return r


def loom_decode(path, d):
    out = os.path.join(d, "decoded.raw")
    run_driver("decode", path, out)
    raw = np.fromfile(out, np.uint8)
    w, h = np.frombuffer(raw[:8].tobytes(), np.int32)
    return raw[8:].reshape(h, w, 3)


def torch_ref(pil_u8):
    return F.normalize(F.to_tensor(pil_u8), MEAN, STD).numpy()


def test_decode(files, d):
    for name, path in files.items():
        mine = loom_decode(path, d)
        pil = np.asarray(Image.open(path).convert("RGB"))
        same = mine.shape == pil.shape and np.array_equal(mine, pil)
        diff = "" if same or mine.shape != pil.shape else f" (max diff {np.abs(mine.astype(int) - pil).max()})"
        check(same, f"decode {name} {Image.open(path).mode} {pil.shape[1]}x{pil.shape[0]} equals PIL's convert('RGB'){diff}")


def test_bad_files(files, d):
    good = open(files["rgb420.jpg"], "rb").read()
    png = open(files["rgb.png"], "rb").read()
    cases = {
        "missing.jpg": None,
        "empty.jpg": b"",
        "text.jpg": b"hello, not an image\n",
        "truncated.jpg": good[: len(good) // 2],
        "header_only.jpg": good[:300],
        "corrupt.jpg": good[:200] + bytes(range(256)) * 4 + good[1224:],
        "truncated.png": png[: len(png) // 2],
        "badcrc.png": png[:40] + bytes([png[40] ^ 0xFF]) + png[41:],
        "png_magic_only.png": png[:8],
    }
    for name, data in cases.items():
        path = os.path.join(d, name)
        if data is not None:
            open(path, "wb").write(data)
        r = run_driver("decode", path, os.path.join(d, "bad.raw"), check_rc=False)
        msg = r.stdout.strip()
        check(r.returncode == 3 and msg.startswith(path + ": ") and "\n" not in msg,
              f"decode {name} fails with one message naming the file: {msg!r}")
    r = run_driver("decode", d, os.path.join(d, "bad.raw"), check_rc=False)
    check(r.returncode == 3 and "directory" in r.stdout, f"decode of a directory fails: {r.stdout.strip()!r}")


def crop_cases(w, h):
    cases = [
        (0, 0, h, w, 224),                      # whole image, downscale (or upscale for small ones)
        (h // 10, w // 7, h - h // 5, w - w // 3, 224),
        (h - h // 3, w - w // 4, h // 3, w // 4, 224),  # bottom-right corner, upscale
        (1, 2, max(1, h // 2), max(1, w - 3), 64),
        (0, 0, 1, 1, 16),                       # one pixel
        (0, w - 1, h, 1, 32),                   # one column
    ]
    if w >= 224 and h >= 224:
        cases += [(3, 5, 224, 224, 224),        # no resampling at all
                  (0, 0, 224, min(w, 300), 224),  # height unchanged: horizontal pass only
                  (1, 1, min(h - 1, 301), 224, 224)]  # width unchanged: vertical pass only
    return cases


def test_train_crops(files, d):
    u8, f32 = os.path.join(d, "u8.raw"), os.path.join(d, "f32.raw")
    for name in ["rgb420.jpg", "rgb444.jpg", "grey.jpg", "small.jpg", "palette.png", "rgba.png", "grey16.png", "bilevel.png"]:
        path = files[name]
        pil = Image.open(path).convert("RGB")
        w, h = pil.size
        cases = crop_cases(w, h)
        params = run_driver("params", w, h, 7, 0, 0, 3).stdout.split("\n")
        cases += [tuple(int(v) for v in line.split()) + (224,) for line in params if line]
        for (top, left, ch, cw, size) in cases:
            run_driver("crop", path, top, left, ch, cw, size, u8, f32)
            mine = np.fromfile(u8, np.uint8).reshape(size, size, 3)
            ref = F.resized_crop(pil, top, left, ch, cw, [size, size], InterpolationMode.BICUBIC)
            exact = np.array_equal(mine, np.asarray(ref))
            err = np.abs(np.fromfile(f32, np.float32).reshape(3, size, size) - torch_ref(ref)).max()
            check(exact and err <= 1e-5,
                  f"resized_crop {name} {w}x{h} box (top {top}, left {left}, {ch}x{cw}) -> {size}: uint8 "
                  f"{'bit-exact' if exact else 'DIFFERS'}, normalized max err {err:.2e}")


def test_eval(files, d):
    u8, f32 = os.path.join(d, "u8.raw"), os.path.join(d, "f32.raw")
    for name, size in [("rgb420.jpg", 224), ("rgb444.jpg", 224), ("progressive.jpg", 224), ("small.jpg", 224),
                       ("rgb.png", 64), ("grey.png", 97), ("la.png", 112), ("cmyk.jpg", 95), ("rgba.png", 224)]:
        path = files[name]
        pil = Image.open(path).convert("RGB")
        run_driver("eval", path, size, u8, f32)
        ref = T.Compose([T.Resize(size, interpolation=InterpolationMode.BICUBIC), T.CenterCrop(size)])(pil)
        mine = np.fromfile(u8, np.uint8).reshape(size, size, 3)
        exact = np.array_equal(mine, np.asarray(ref))
        err = np.abs(np.fromfile(f32, np.float32).reshape(3, size, size) - torch_ref(ref)).max()
        check(exact and err <= 1e-5, f"eval Resize({size}) + CenterCrop({size}) of {name} {pil.size[0]}x{pil.size[1]}: "
              f"uint8 {'bit-exact' if exact else 'DIFFERS'}, normalized max err {err:.2e}")


def test_params():
    def crops(w, h, seed, epoch, first, count):
        out = run_driver("params", w, h, seed, epoch, first, count).stdout.split("\n")
        return [tuple(int(v) for v in line.split()) for line in out if line]

    a = crops(500, 375, 11, 3, 0, 2000)
    check(a == crops(500, 375, 11, 3, 0, 2000), "crop parameters are a function of (seed, epoch, index)")
    check(a[1000:1010] == crops(500, 375, 11, 3, 1000, 10), "a sample's crop does not depend on the ones before it (resume)")
    check(a != crops(500, 375, 11, 4, 0, 2000) and a != crops(500, 375, 12, 3, 0, 2000),
          "another epoch or seed draws other crops")
    area = 500 * 375
    inside = all(0 <= t and 0 <= l and 0 < h and 0 < w and t + h <= 375 and l + w <= 500 for t, l, h, w in a)
    check(inside, "every crop lies inside the image")
    # The same statistics from torchvision's own get_params (its RNG, not ours): rejection of crops that
    # do not fit shapes them (for 500x375 most ratios end up near 4/3), so compare rather than assume.
    torch.manual_seed(0)
    ref = [T.RandomResizedCrop.get_params(torch.zeros(3, 375, 500), [0.9, 1.0], [3 / 4, 4 / 3]) for _ in range(2000)]

    def stats(cs):
        cs = np.array(cs, dtype=np.float64)
        return (cs[:, 2] * cs[:, 3] / area).mean(), np.log(cs[:, 3] / cs[:, 2]).mean(), \
            (cs[:, 1] / (500 - cs[:, 3] + 1)).mean(), ((cs[:, 2] == 375) & (cs[:, 3] == 500)).mean()

    mine_s, ref_s = stats(a), stats(ref)
    names = ["area fraction", "log aspect ratio", "relative left offset", "whole-image share"]
    for name, m, r, tol in zip(names, mine_s, ref_s, [0.003, 0.01, 0.03, 0.02]):
        check(abs(m - r) <= tol, f"crop {name}: mean {m:.4f} vs torchvision's {r:.4f} (2000 draws each)")
    # Fallback (no try fits): equal to torchvision's get_params, whatever the random draws.
    for (w, h) in [(1000, 10), (10, 1000), (640, 100), (7, 300)]:
        ref = T.RandomResizedCrop.get_params(torch.zeros(3, h, w), [0.9, 1.0], [3 / 4, 4 / 3])
        mine = crops(w, h, 5, 0, 0, 1)[0]
        check(tuple(ref) == mine, f"{w}x{h}: fallback centre crop {mine} equals torchvision's {tuple(ref)}")


def main():
    if not os.path.exists(DRIVER):
        print(f"FAIL  {DRIVER} not built")
        return 1
    with tempfile.TemporaryDirectory() as d:
        files = make_inputs(d)
        test_decode(files, d)
        test_bad_files(files, d)
        test_train_crops(files, d)
        test_eval(files, d)
        test_params()
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        return 1
    print("all image transform checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
