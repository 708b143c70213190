"""Checks for tests/cli/test_report.sh, independent of Loom's parsers:
  spot CSV LOGDIR          values of chosen iterations equal the reference logs' text
  loom CSV LOG             every iteration line of a Loom log equals its CSV row (parsed here by regex)
  page CSV HTML            every plotted series equals the CSV, and its polyline maps back to the values
  png PNG HTML             a Chromium screenshot of the page is not blank and shows every run's colour
"""
import csv, gzip, html.parser, math, re, struct, sys, zlib


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {(r["run"], int(r["iteration"])): r for r in rows}, rows


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


# (log, iteration, column, value as the log prints it, the log text that shows it)
SPOTS = [
    ("002-megatron-gpt2-1.5b-fp16", 1, "loss_scale", "4294967296.0", "iteration        1/    1000 | consumed samples:           64 | elapsed time per iteration (ms): 9162.9"),
    ("002-megatron-gpt2-1.5b-fp16", 1, "step_time_ms", "9162.9", "elapsed time per iteration (ms): 9162.9"),
    ("002-megatron-gpt2-1.5b-fp16", 1, "skipped_iters", "1", "loss scale: 4294967296.0 | number of skipped iterations:   1"),
    ("002-megatron-gpt2-1.5b-fp16", 1, "time_ms[forward-compute]", "3254.60", "time (ms) | forward-compute: 3254.60 | backward-compute: 5796.80"),
    ("002-megatron-gpt2-1.5b-fp16", 17, "loss[lm loss]", "", "iteration       17/"),
    ("002-megatron-gpt2-1.5b-fp16", 18, "loss[lm loss]", "1.129461E+01", "learning rate: 4.687E-05 | global batch size:    64 | lm loss: 1.129461E+01 | loss scale: 65536.0 | grad norm: 199.088"),
    ("002-megatron-gpt2-1.5b-fp16", 18, "lr", "4.687E-05", "learning rate: 4.687E-05"),
    ("002-megatron-gpt2-1.5b-fp16", 18, "grad_norm", "199.088", "grad norm: 199.088"),
    ("002-megatron-gpt2-1.5b-fp16", 18, "skipped_iters", "0", "grad norm: 199.088 | number of skipped iterations:   0"),
    ("002-megatron-gpt2-1.5b-fp16", 18, "mem_allocated_mb", "30132.1474609375", "[Rank 0] (after 18 iterations) memory (MB) | allocated: 30132.1474609375 | max allocated: 30132.15185546875"),
    ("002-megatron-gpt2-1.5b-fp16", 18, "mem_max_reserved_mb", "30538.0", "reserved: 30538.0 | max reserved: 30538.0"),
    ("002-megatron-gpt2-1.5b-fp16", 18, "time_ms[optimizer]", "237.68", "optimizer: 237.68 | batch-generator: 6.26"),
    ("002-megatron-gpt2-1.5b-fp16", 24, "loss[lm loss]", "2.790983E+00", "lm loss: 2.790983E+00 | loss scale: 65536.0 | grad norm: 14.572"),
    ("004-megatron-gpt-tp2-pp4-vpp4", 1, "step_time_ms", "4493.2", "[2025-06-28 18:42:27] iteration        1/      20 | consumed samples:           16 | elapsed time per iteration (ms): 4493.2"),
    ("004-megatron-gpt-tp2-pp4-vpp4", 1, "lr", "0.000000E+00", "learning rate: 0.000000E+00"),
    ("004-megatron-gpt-tp2-pp4-vpp4", 1, "consumed_samples", "16", "consumed samples:           16"),
    ("004-megatron-gpt-tp2-pp4-vpp4", 1, "loss_scale", "4294967296.0", "loss scale: 4294967296.0 | number of skipped iterations:   1"),
    # memory: the largest figure over the eight ranks' lines
    ("004-megatron-gpt-tp2-pp4-vpp4", 1, "mem_max_allocated_mb", "7706.13916015625", "[Rank 0] (after 1 iterations) memory (MB) | allocated: 1941.8955078125 | max allocated: 7706.13916015625"),
    ("004-megatron-gpt-tp2-pp4-vpp4", 1, "mem_allocated_mb", "1958.19287109375", "[Rank 6] (after 1 iterations) memory (MB) | allocated: 1958.19287109375"),
    ("004-megatron-gpt-tp2-pp4-vpp4", 1, "mem_reserved_mb", "8178.0", "[Rank 1] (after 1 iterations) memory (MB) | allocated: 1941.8955078125 | max allocated: 7706.13916015625 | reserved: 8178.0"),
    ("001-gpt2-deepspeed-zero2-offload", 5, "loss[lm loss]", "1.098990E+01", "iteration        5/ 1000000 | elapsed time per iteration (ms): 1196.2 | learning rate 7.500E-08 | lm loss 1.098990E+01 | loss scale 4096.0 |"),
    ("001-gpt2-deepspeed-zero2-offload", 5, "lr", "7.500E-08", "learning rate 7.500E-08"),
    ("001-gpt2-deepspeed-zero2-offload", 5, "loss_scale", "4096.0", "loss scale 4096.0"),
    ("001-gpt2-deepspeed-zero2-offload", 5, "step_time_ms", "1196.2", "elapsed time per iteration (ms): 1196.2"),
    ("001-gpt2-deepspeed-zero2-offload", 5, "mem_max_allocated_mb", "14566.3486328125", "after 5 iterations memory (MB) | allocated: 294.60595703125 | max allocated: 14566.3486328125 | cached: 20508.0"),
    ("001-gpt2-deepspeed-zero2-offload", 5, "mem_reserved_mb", "20508.0", "cached: 20508.0 | max cached: 20508.0"),
    ("001-gpt2-deepspeed-zero2-offload", 5, "time_ms[forward]", "567.42", "time (ms) | forward: 567.42 | backward: 516.25"),
    ("001-gpt2-deepspeed-zero2-offload", 100, "samples_per_s", "421.75204796909713", "0/100, SamplesPerSec=421.75204796909713"),
    ("001-gpt2-deepspeed-zero2-offload", 100, "skipped_total", "0", "[Rank 0] step=100, skipped=0, lr=[1.5e-06, 1.5e-06]"),
    ("001-gpt2-deepspeed-zero2-offload", 100, "lr", "1.500E-06", "iteration      100/ 1000000 | elapsed time per iteration (ms): 907.6 | learning rate 1.500E-06"),
    ("001-gpt2-deepspeed-zero2-offload", 1000, "valid_loss[LM loss]", "6.585178E+00", "validation loss at iteration 1000 | LM loss: 6.585178E+00 | LM PPL: 7.242798E+02"),
    ("001-gpt2-deepspeed-zero2-offload", 1000, "valid_ppl[LM loss]", "7.242798E+02", "LM PPL: 7.242798E+02"),
    ("001-gpt2-deepspeed-zero2-offload", 23000, "loss[lm loss]", "2.133970E+00", "iteration    23000/ 1000000 | elapsed time per iteration (ms): 913.0 | learning rate 1.499E-04 | lm loss 2.133970E+00"),
    ("001-gpt2-deepspeed-zero2-offload", 23000, "samples_per_s", "424.55898924486206", "0/23000, SamplesPerSec=424.55898924486206"),
    ("000-coca-evaclip-deepspeed-zero1", 1, "loss[Loss]", "29.341", "Global Steps: 1 Train Epoch: 0 [    2048/12202117 (0%)] Loss: 29.341 (29.34) Loss(CLIP): 7.7311 (7.731) Loss(CoCa): 21.609 (21.61) Grad Norm: 4.9168 (4.917) Loss Scaler: 65536. (6.554e+04) LR: 0.000000"),
    ("000-coca-evaclip-deepspeed-zero1", 1, "loss[Loss(CLIP)]", "7.7311", "Loss(CLIP): 7.7311 (7.731)"),
    ("000-coca-evaclip-deepspeed-zero1", 1, "loss[Loss(CoCa)]", "21.609", "Loss(CoCa): 21.609 (21.61)"),
    ("000-coca-evaclip-deepspeed-zero1", 1, "grad_norm", "4.9168", "Grad Norm: 4.9168 (4.917)"),
    ("000-coca-evaclip-deepspeed-zero1", 1, "loss_scale", "65536.", "Loss Scaler: 65536. (6.554e+04)"),
    ("000-coca-evaclip-deepspeed-zero1", 1, "step_time_ms", "38165", "Batch (t): 38.165, 53.6611/s"),
    ("000-coca-evaclip-deepspeed-zero1", 1, "samples_per_s", "53.6611", "Batch (t): 38.165, 53.6611/s"),
    ("000-coca-evaclip-deepspeed-zero1", 1, "data_time_ms", "18972", "Data (t): 18.972 Batch (t): 38.165"),
    ("000-coca-evaclip-deepspeed-zero1", 101, "lr[visual]", "0.000010", "LR_visual: 0.000010 LR_text: 0.000001"),
    ("000-coca-evaclip-deepspeed-zero1", 101, "step_time_ms", "1856", "Batch (t): 1.856, 1057.47/s"),
    ("000-coca-evaclip-deepspeed-zero1", 501, "skipped_iters", "0", "Global Steps: 501 "),
    # two `OVERFLOW! Rank 0 Skipping step` lines between steps 501 and 601, and two before 1601
    ("000-coca-evaclip-deepspeed-zero1", 601, "skipped_iters", "2", "Attempted loss scale: 65536, reducing to 32768.0"),
    ("000-coca-evaclip-deepspeed-zero1", 601, "loss_scale", "32768.", "Grad Norm: 9.2736 (6.471) Loss Scaler: 32768. (6.085e+04)"),
    ("000-coca-evaclip-deepspeed-zero1", 1601, "skipped_iters", "2", "Attempted loss scale: 65536.0, reducing to 32768.0"),
    ("003-llama-1b-pipeline8-autosplit", 1, "loss[loss]", "21.49", "| epoch   1 |     1/  323 batches | lr 0.00 | ms/batch 7289.55 | loss 21.49 | ppl 2152814925.50"),
    ("003-llama-1b-pipeline8-autosplit", 1, "ppl[loss]", "2152814925.50", "ppl 2152814925.50"),
    ("003-llama-1b-pipeline8-autosplit", 1, "lr", "0.00", "| lr 0.00 |"),
    ("003-llama-1b-pipeline8-autosplit", 20, "step_time_ms", "1581.34", "|    20/  323 batches | lr 0.00 | ms/batch 1581.34 | loss  1.63 | ppl     5.12"),
    ("003-llama-1b-pipeline8-autosplit", 20, "loss[loss]", "1.63", "loss  1.63 | ppl     5.12"),
]
ROWS = {"000-coca-evaclip-deepspeed-zero1": 17, "001-gpt2-deepspeed-zero2-offload": 4601,
        "002-megatron-gpt2-1.5b-fp16": 24, "003-llama-1b-pipeline8-autosplit": 20, "004-megatron-gpt-tp2-pp4-vpp4": 1}


def spot(csv_path, logdir):
    table, rows = read_csv(csv_path)
    for run, n in ROWS.items():
        got = sum(1 for r in rows if r["run"] == run)
        if got != n:
            fail(f"{run}: {got} rows, expected {n}")
    texts = {}
    for run, it, col, want, source in SPOTS:
        if run not in texts:
            texts[run] = gzip.open(f"{logdir}/{run}.log.gz", "rt", errors="replace").read()
        if source not in texts[run]:
            fail(f"{run}: the test's source text is not in the log: {source!r}")
        row = table.get((run, it))
        if row is None:
            fail(f"{run}: no row for iteration {it}")
        if row.get(col) != want:
            fail(f"{run} iteration {it} {col}: {row.get(col)!r}, the log says {want!r}")
    # 002: every logged loss scale of the 17 skipped iterations halves from 2^32
    for it in range(1, 18):
        want = f"{2.0 ** (33 - it):.1f}" if it <= 16 else "65536.0"
        if table[("002-megatron-gpt2-1.5b-fp16", it)]["loss_scale"] != want:
            fail(f"002 iteration {it} loss scale")
    print(f"spot: {len(SPOTS)} values and {len(ROWS)} row counts match the logs")


LOOM_ITER = re.compile(r"^ \[[^\]]+\] iteration +(\d+)/ *\d+ \| (.*)$")
LOOM_KEYS = {"consumed samples": "consumed_samples", "elapsed time per iteration (ms)": "step_time_ms",
             "throughput per GPU (TFLOP/s/GPU)": "tflops", "tokens per second per GPU": "tokens_per_s",
             "learning rate": "lr", "global batch size": "global_batch_size", "lm loss": "loss[lm loss]",
             "loss scale": "loss_scale", "grad norm": "grad_norm", "number of skipped iterations": "skipped_iters",
             "number of nan iterations": "nan_iters"}


def loom(csv_path, log_path):
    table, _ = read_csv(csv_path)
    run = re.sub(r"\.log$", "", log_path.rsplit("/", 1)[-1])
    checked = 0
    last = None
    for line in open(log_path):
        line = line.rstrip("\n")
        m = LOOM_ITER.match(line)
        if m:
            last = int(m.group(1))
            row = table[(run, last)]
            for field in m.group(2).split(" | "):
                key, _, value = field.strip(" |").rpartition(": ")
                col = LOOM_KEYS.get(key)
                if col is None:
                    fail(f"unknown field {key!r} in the Loom log")
                if row[col] != value.strip():
                    fail(f"iteration {last} {col}: {row[col]!r}, the log says {value!r}")
                checked += 1
            continue
        m = re.match(r"^\[Rank 0\] \(after (\d+) iterations\) memory \(MB\) \| allocated: (\S+) \| max allocated: (\S+) \| reserved: (\S+) \| max reserved: (\S+)$", line)
        if m:
            row = table[(run, int(m.group(1)))]
            for col, v in zip(["mem_allocated_mb", "mem_max_allocated_mb", "mem_reserved_mb", "mem_max_reserved_mb"], m.groups()[1:]):
                if row[col] != v:
                    fail(f"memory {col}: {row[col]!r}, the log says {v!r}")
                checked += 1
            continue
        if line.startswith("time (ms) | forward-compute") and last is not None:
            for field in line.split(" | ")[1:]:
                key, _, value = field.partition(": ")
                if table[(run, last)][f"time_ms[{key}]"] != value:
                    fail(f"timer {key} at {last}")
                checked += 1
        m = re.match(r"^ validation loss at iteration (\d+) \| lm loss value: (\S+) \| lm loss PPL: (\S+) \| $", line)
        if m:
            row = table[(run, int(m.group(1)))]
            if row["valid_loss[lm loss]"] != m.group(2) or row["valid_ppl[lm loss]"] != m.group(3):
                fail("validation line")
            checked += 2
    if checked < 20:
        fail(f"only {checked} values checked in the Loom log")
    print(f"loom: {checked} values of the Loom log match the CSV")


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.charts = []  # (svg attrs, [polyline attrs])
        self.swatches = []
        self.tags = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "svg":
            self.charts.append((a, []))
        elif tag == "polyline":
            self.charts[-1][1].append(a)
        elif tag == "rect" and a.get("class") == "swatch":
            self.swatches.append(a["fill"])


def page(csv_path, html_path):
    _, rows = read_csv(csv_path)
    text = open(html_path).read()
    for bad in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        if bad in text:
            fail(f"the page is not self-contained: {bad}")
    if re.search(r"(src|href)\s*=", text):
        fail("the page refers to another resource")
    p = Page()
    p.feed(text)
    metrics = [c for c in rows[0].keys() if c not in ("run", "iteration")]
    expected = {}
    for r in rows:
        for c in metrics:
            if r[c] != "" and math.isfinite(float(r[c])):
                expected.setdefault((r["run"], c), []).append((r["iteration"], r[c]))
    seen = set()
    npoints = 0
    for svg, lines in p.charts:
        left, top, width, height = map(float, svg["data-plot"].split())
        x0, x1 = float(svg["data-x-min"]), float(svg["data-x-max"])
        y0, y1 = float(svg["data-y-min"]), float(svg["data-y-max"])
        log = svg["data-y-scale"] == "log"
        f = (lambda v: math.log10(v)) if log else (lambda v: v)
        for pl in lines:
            key = (pl["data-run"], pl["data-metric"])
            if pl["data-metric"] != svg["data-metric"] or key in seen:
                fail(f"polyline {key} misplaced or repeated")
            seen.add(key)
            xs, ys = pl["data-x"].split(), pl["data-y"].split()
            if list(zip(xs, ys)) != expected.get(key):
                fail(f"chart data of {key} differs from the CSV")
            pts = [tuple(map(float, q.split(","))) for q in pl["points"].split()]
            if len(pts) != len(xs):
                fail(f"{key}: {len(pts)} points for {len(xs)} values")
            for (px, py), x, y in zip(pts, xs, ys):
                # points are printed to 0.01 px: back in data units that is within 0.006 px of the value
                bx = x0 + (px - left) / width * (x1 - x0)
                by = f(y0) + (top + height - py) / height * (f(y1) - f(y0))
                if abs(bx - float(x)) > 0.006 / width * (x1 - x0) + 1e-12:
                    fail(f"{key}: x {px} maps back to {bx}, not {x}")
                if abs(by - f(float(y))) > 0.006 / height * (f(y1) - f(y0)) + 1e-12:
                    fail(f"{key}: y {py} maps back to {by}, not {y}")
                if not (left - 0.01 <= px <= left + width + 0.01 and top - 0.01 <= py <= top + height + 0.01):
                    fail(f"{key}: point outside the plot")
                npoints += 1
    if seen != set(expected):
        fail(f"series without a chart: {sorted(set(expected) - seen)[:5]}")
    print(f"page: {len(p.charts)} charts, {len(seen)} series, {npoints} points equal the CSV")
    return p


def decode_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("not a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                fail(f"unexpected PNG kind depth={depth} colour={ctype} interlace={interlace}")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    pixels = []
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels.append(bytes(line))
        prev = line
    return w, h, bpp, pixels


def png(png_path, html_path):
    w, h, bpp, pixels = decode_png(png_path)
    colours = {}
    for line in pixels:
        for i in range(0, len(line), bpp):
            rgb = line[i:i + 3]
            colours[rgb] = colours.get(rgb, 0) + 1
    white = colours.get(b"\xff\xff\xff", 0)
    non_white = w * h - white
    if non_white < 0.05 * w * h:
        fail(f"screenshot nearly blank: {non_white} of {w * h} pixels are not white")
    p = Page()
    p.feed(open(html_path).read())
    for c in sorted(set(p.swatches)):
        rgb = bytes.fromhex(c[1:])
        if colours.get(rgb, 0) < 50:
            fail(f"run colour {c} hardly in the screenshot ({colours.get(rgb, 0)} pixels)")
    print(f"png: {w}x{h}, {non_white} non-white pixels, {len(colours)} colours, all {len(set(p.swatches))} run colours shown")


if __name__ == "__main__":
    {"spot": spot, "loom": loom, "page": page, "png": png}[sys.argv[1]](*sys.argv[2:])
