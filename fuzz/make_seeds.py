#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: fuzz/make_seeds.py OUT_DIR [--spm].

The committed seeds (fuzz/corpus/<target>/) were written by this script, except those of fuzz_npy and
fuzz_checkpoint, which the targets write themselves (LOOM_FUZZ_WRITE_SEED=FILE build-fuzz/fuzz/<target>
-runs=0) from what Loom saves; scripts/fuzz.sh runs it again at run time for the seeds too big to commit
(--spm: SentencePiece models trained on the bundled corpus).
Inputs made of several files join them with the separator line of fuzz/fuzz_util.h.
"""
import base64
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEP = b"\n--8<--\n"
TEXT = "Hello world, it's 2024!  In the beginning God created\tthe heaven\nand the earth. \u00e9t\u00e9 \u4e2d\u6587 \U0001F600"


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tiny_gpt2(merges):
    """The bundled GPT-2 vocabulary cut to its 256 byte tokens and the first `merges` merges."""
    full = json.load(open(os.path.join(ROOT, "data/gpt2/vocab.json"), encoding="utf-8"))
    vocab = {k: v for k, v in full.items() if v < 256}
    lines = open(os.path.join(ROOT, "data/gpt2/merges.txt"), encoding="utf-8").read().split("\n")
    kept = lines[1 : merges + 1]
    for m in kept:
        a, b = m.split(" ")
        vocab.setdefault(a + b, len(vocab))
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, kept


def mmidx(dtype, docs):
    item = {1: 1, 4: 4, 8: 2, 3: 2, 5: 8, 2: 1}[dtype]
    fmt = {1: "B", 4: "i", 8: "H", 3: "h", 5: "q", 2: "b"}[dtype]
    sizes, pointers, binary, p = [], [], b"", 0
    for d in docs:
        sizes.append(len(d))
        pointers.append(p)
        binary += struct.pack("<%d%s" % (len(d), fmt), *d)
        p += len(d) * item
    idx = b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, dtype, len(docs), len(docs) + 1)
    idx += struct.pack("<%di" % len(sizes), *sizes) + struct.pack("<%dq" % len(pointers), *pointers)
    idx += struct.pack("<%dq" % (len(docs) + 1), *range(len(docs) + 1))
    return idx + SEP + binary


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def adam7_png(im):
    """An interlaced (Adam7) 8-bit RGB PNG of PIL image `im` (PIL writes no interlaced PNG)."""
    import zlib
    w, h = im.size
    px = im.load()
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        xs = range(x0, w, dx)
        if not xs:
            continue
        for y in range(y0, h, dy):
            raw += b"\x00" + bytes(c for x in xs for c in px[x, y])

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if "--spm" in sys.argv:
        import sentencepiece as spm  # python3-sentencepiece

        text = os.path.join(out, "spm_input.txt")
        with open(os.path.join(ROOT, "data/corpus/kjv.jsonl"), encoding="utf-8") as f, open(text, "w") as o:
            for i, line in enumerate(f):
                if i == 20:
                    break
                t = json.loads(line)["text"]
                for s in range(0, len(t), 200):
                    o.write(t[s : s + 200] + "\n")
        for kind, size in (("bpe", 500), ("unigram", 300)):
            prefix = os.path.join(out, "spm_" + kind)
            spm.SentencePieceTrainer.train(input=text, model_prefix=prefix, vocab_size=size, model_type=kind,
                                           byte_fallback=kind == "bpe", normalization_rule_name="identity",
                                           num_threads=1, minloglevel=2)
            write(out, "fuzz_sentencepiece", kind, open(prefix + ".model", "rb").read() + SEP + TEXT.encode())
            os.remove(prefix + ".model")
            os.remove(prefix + ".vocab")
        os.remove(text)
        return

    # MMIDIDX .idx + .bin
    write(out, "fuzz_indexed_dataset", "uint16", mmidx(8, [[1, 2, 3], [50256], [7, 8, 9, 10, 11]]))
    write(out, "fuzz_indexed_dataset", "int32", mmidx(4, [[100000, 5], [3, 4, 5, 6]]))
    write(out, "fuzz_indexed_dataset", "uint8_empty_doc", mmidx(1, [[], [1, 2]]))

    # safetensors
    write(out, "fuzz_safetensors", "two", safetensors(
        [("a", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), ("b", "BF16", [3], b"\x80\x3f" * 3)], {"format": "pt"}))
    write(out, "fuzz_safetensors", "scalar_empty", safetensors([("s", "F16", [], b"\x00\x3c"), ("e", "I64", [0, 4], b"")]))

    # DeepSpeed JSON
    write(out, "fuzz_deepspeed_config", "full", json.dumps({
        "train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 4,
        "gradient_clipping": 1.0, "zero_optimization": {"stage": 1, "reduce_bucket_size": 5e8,
                                                         "offload_optimizer": {"device": "nvme", "nvme_path": "/tmp/x"}},
        "fp16": {"enabled": True, "loss_scale": 0, "initial_scale_power": 16, "loss_scale_window": 1000,
                 "hysteresis": 2, "min_loss_scale": 1},
        "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}}},
        indent=1))
    write(out, "fuzz_deepspeed_config", "bf16_lamb", json.dumps({
        "train_micro_batch_size_per_gpu": 1, "bf16": {"enabled": True}, "optimizer": {"type": "Lamb"},
        "zero_optimization": {"stage": 2}}))

    # loom train command lines (one argument per line)
    base = ["--num-layers", "4", "--hidden-size", "64", "--num-attention-heads", "4", "--seq-length", "32",
            "--micro-batch-size", "2", "--global-batch-size", "8", "--train-iters", "10", "--lr", "1e-3",
            "--data-path", "d", "--vocab-file", "v", "--merge-file", "m"]
    write(out, "fuzz_command_line", "gpt", "\n".join(base))
    write(out, "fuzz_command_line", "parallel", "\n".join(base + [
        "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--sequence-parallel",
        "--num-layers-per-virtual-pipeline-stage", "1", "--fp16", "--zero-stage", "1", "--lr-decay-style=cosine",
        "--min-lr", "1e-4", "--lr-warmup-fraction", "0.1", "--recompute-activations"]))
    write(out, "fuzz_command_line", "llama", "\n".join([
        "--model-preset", "llama3.2-1b", "--num-layers", "2", "--seq-length", "64", "--train-iters", "2",
        "--data-path", "1.0", "d", "--tokenizer-type", "HuggingFaceTokenizer", "--tokenizer-model", "t.json",
        "--use-rope-scaling", "--bf16"]))

    # GPT-2 vocab.json + merges.txt + text
    vocab, merges = tiny_gpt2(60)
    merges_txt = "#version: 0.2\n" + "\n".join(merges) + "\n"
    write(out, "fuzz_gpt2_tokenizer", "tiny", json.dumps(vocab, ensure_ascii=False) + SEP.decode() + merges_txt +
          SEP.decode() + TEXT)

    # tokenizer.json: GPT-2 style ByteLevel, and Llama 3 style Split + ByteLevel with a post-processor
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
             "vocab": vocab, "merges": merges}
    gpt2 = {"version": "1.0", "normalizer": None, "model": model,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "special": True}]}
    write(out, "fuzz_hf_tokenizer", "gpt2", json.dumps(gpt2, ensure_ascii=False) + SEP.decode() + TEXT)
    llama_pattern = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                     "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    model3 = dict(model, ignore_merges=True, merges=[m.split(" ") for m in merges])
    n = len(vocab)
    llama = {"version": "1.0", "normalizer": None, "model": model3,
             "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                 {"type": "Split", "pattern": {"Regex": llama_pattern}, "behavior": "Isolated", "invert": False},
                 {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
             "added_tokens": [{"id": n, "content": "<|begin_of_text|>", "special": True},
                              {"id": n + 1, "content": "<|end_of_text|>", "special": True}],
             "post_processor": {"type": "TemplateProcessing",
                                "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                           {"Sequence": {"id": "A", "type_id": 0}}],
                                "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [n],
                                                                         "tokens": ["<|begin_of_text|>"]}}}}
    write(out, "fuzz_hf_tokenizer", "llama3", json.dumps(llama, ensure_ascii=False) + SEP.decode() + TEXT)

    # tiktoken ranks: the same tokens as raw bytes, in rank order
    u2b = {v: k for k, v in bytes_to_unicode().items()}
    ranks = sorted(((i, bytes(u2b[c] for c in tok)) for tok, i in vocab.items() if tok != "<|endoftext|>"))
    rank_file = "".join("%s %d\n" % (base64.b64encode(b).decode(), r) for r, (_, b) in enumerate(ranks))
    write(out, "fuzz_tiktoken", "tiny", rank_file + SEP.decode() + TEXT)

    # JSONL for preprocess
    lines = []
    with open(os.path.join(ROOT, "data/corpus/kjv.jsonl"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == 3:
                break
            d = json.loads(line)
            lines.append(json.dumps({"text": d["text"][:120], "title": "Book %d" % i}))
    write(out, "fuzz_preprocess", "kjv", "\n".join(lines) + "\n")
    write(out, "fuzz_preprocess", "mixed", "\n".join([
        json.dumps({"text": TEXT, "title": ""}), "{not json", "[1, 2]", json.dumps({"text": 5, "title": "x"}),
        json.dumps({"title": "no text"}), "", json.dumps({"text": "\u00e9\ud800".encode("utf-8", "surrogatepass").decode("latin-1"), "title": "t"})]))

    # HF config.json for `convert --from hf` (the tiny model of fuzz_hf_config.cpp), with and without an index
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
           "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 40,
           "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True,
           "hidden_act": "silu", "torch_dtype": "float32",
           "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 64}}
    write(out, "fuzz_hf_config", "tiny_llama", json.dumps(cfg, indent=2))
    names = ["model.embed_tokens.weight", "model.norm.weight"] + ["model.layers.0." + s for s in (
        "input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
        "self_attn.v_proj.weight", "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
        "mlp.down_proj.weight")]
    index = {"metadata": {"total_size": 0}, "weight_map": {n: "model.safetensors" for n in names}}
    write(out, "fuzz_hf_config", "tiny_llama_index", json.dumps(cfg) + SEP.decode() + json.dumps(index))

    # Images (fuzz_image_codec): small JPEGs (baseline 4:2:0, progressive, grey, CMYK) and PNGs (RGB,
    # palette with tRNS, grey 16-bit, RGBA interlaced, grey 1-bit), written by PIL.
    import io
    from PIL import Image

    def img(mode, size=(12, 9)):
        im = Image.new(mode, size)
        px = im.load()
        for y in range(size[1]):
            for x in range(size[0]):
                v = (x * 37 + y * 91) % 256
                px[x, y] = {"RGB": (v, 255 - v, (x * y) % 256), "RGBA": (v, 2 * v % 256, 99, x * 20 % 256),
                            "L": v, "CMYK": (v, 0, 255 - v, y * 20 % 256), "I;16": v * 257, "1": v & 1,
                            "P": v % 16}[mode]
        return im

    def save(name, im, fmt, **kw):
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        write(out, "fuzz_image_codec", name, b.getvalue())

    save("baseline.jpg", img("RGB"), "JPEG", quality=80)
    save("progressive.jpg", img("RGB"), "JPEG", quality=60, progressive=True)
    save("grey.jpg", img("L"), "JPEG", quality=70)
    save("cmyk.jpg", img("CMYK"), "JPEG", quality=70)
    save("rgb.png", img("RGB"), "PNG")
    pal = img("P")
    pal.putpalette([c for i in range(16) for c in (i * 16, 255 - i * 16, i * 7)])
    save("palette_trns.png", pal, "PNG", transparency=3)
    save("grey16.png", img("I;16"), "PNG")
    save("rgba.png", img("RGBA"), "PNG")
    write(out, "fuzz_image_codec", "rgb_interlaced.png", adam7_png(img("RGB", (7, 5))))
    save("grey1.png", img("1"), "PNG")

    # Image-caption indexes (fuzz_image_text_index): a mode byte (bit 0 csv, bit 1 labels, bit 2 ',')
    # then the file: JSON lines, a JSON array, CSV with quoting, each with and without labels.
    write(out, "fuzz_image_text_index", "jsonl", b"\x00" + "\n".join([
        json.dumps({"image": "a/1.jpg", "caption": "a red square", "extra": 3}), "",
        json.dumps({"caption": "\u00e9t\u00e9 \"quoted\"", "image": "/abs/2.png"})]).encode() + b"\n")
    write(out, "fuzz_image_text_index", "json_array_labels", b"\x02" + json.dumps([
        {"image": "x.jpg", "caption": "cat on a mat", "label": "cat"},
        {"image": "y.jpg", "caption": "a dog", "label": 1}]).encode())
    write(out, "fuzz_image_text_index", "csv_tab", b"\x01" + "filepath\ttitle\n"
          "img/1.jpg\ta photo\n\"img/2.jpg\"\t\"say \"\"hi\"\"\"\n".encode())
    write(out, "fuzz_image_text_index", "csv_comma_labels", b"\x07" + "title,filepath,label\n"
          "\"a, b\",p.png,dog\nc,q.png,2\n".encode())

    # CLIP vocabulary (fuzz_clip_tokenizer): a header and merges in the byte alphabet with </w>, plain and
    # gzip-compressed.
    import gzip
    clip_merges = ["t h", "th e</w>", "a n", "an d</w>", "o f</w>", "i n", "in g</w>", "e r", "h e", "he l", "hel l",
                   "hell o</w>", "w o", "wo r", "wor l", "worl d</w>", "\u0120 a", "c a", "ca t</w>"]
    clip_text = "\"bpe_simple_vocab_16e6.txt#version: 0.2\n" + "\n".join(clip_merges) + "\n"
    clip_input = "Hello  World, the CAT &amp; and of thing 12 \u00c9t\u00e9 \u4e2d <end_of_text> it's"
    write(out, "fuzz_clip_tokenizer", "plain", clip_text + SEP.decode() + clip_input)
    write(out, "fuzz_clip_tokenizer", "gzip", gzip.compress(clip_text.encode(), mtime=0) + SEP + clip_input.encode())

    # Zero-shot classes (fuzz_zero_shot_classes): JSON with templates and a label key, and a plain list.
    write(out, "fuzz_zero_shot_classes", "json", json.dumps({
        "classes": ["red square", "blue circle", "caf\u00e9 {sign}"], "templates": ["a photo of a {}.", "{{{}}} art"],
        "label_key": "label"}, ensure_ascii=False))
    write(out, "fuzz_zero_shot_classes", "lines", "tench\ngoldfish\r\n\n  \ngreat white shark\n")

    # CoCa state.json (fuzz_coca_state): what save_coca_checkpoint writes for the target's fixed shape, with
    # model.safetensors' size and CRC-32 (zlib's, as file_crc32) matching the bytes after the separator.
    import zlib
    shape = {"image_size": 32, "patch_size": 8, "vision_width": 16, "vision_layers": 1, "vision_heads": 2,
             "vision_mlp_hidden": 32, "rope_pt_grid": 0, "text_width": 16, "text_layers": 1, "text_heads": 2,
             "text_mlp_hidden": 32, "text_context_length": 8, "text_vocab_size": 64, "decoder_layers": 1,
             "pooler_queries": 4, "pooler_heads": 2, "embed_dim": 8}
    weights = safetensors([("w", "F32", [2], struct.pack("<2f", 1.0, -2.0))])
    files = {"model.safetensors": {"crc32": zlib.crc32(weights), "bytes": len(weights)}}
    state = {"format": "loom-coca-checkpoint", "version": 1, "epoch": 2, "step": 40, "batch_in_epoch": 3,
             "optimizer_steps": 38, "loader": {"epoch": 2, "position": 96, "seed": 0}, "shape": shape, "files": files}
    write(out, "fuzz_coca_state", "fp32", json.dumps(state, indent=1).encode() + SEP + weights)
    state_scaler = dict(state, loss_scaler={"scale": 65536.0, "growth_tracker": 12, "hysteresis_tracker": 2})
    write(out, "fuzz_coca_state", "fp16_scaler", json.dumps(state_scaler).encode() + SEP + weights)

    # Subcommand command lines (fuzz_subcommand_args): the subcommand, then one argument per line.
    write(out, "fuzz_subcommand_args", "preprocess", "\n".join([
        "preprocess", "--input", "data/corpus/kjv.jsonl", "--output-prefix", "out/kjv", "--json-keys", "text", "title",
        "--vocab-file", "data/gpt2/vocab.json", "--merge-file=data/gpt2/merges.txt", "--append-eod", "--workers", "2",
        "--tokenizer-type", "GPT2BPETokenizer", "--dataset-impl", "mmap", "--skip-bad-lines"]))
    write(out, "fuzz_subcommand_args", "make_images", "\n".join([
        "make-images", "--output", "/nonexistent/shapes", "--num-train", "2000", "--num-val=500", "--image-size", "64",
        "--seed", "1", "--jpeg-quality", "90", "--overwrite"]))
    write(out, "fuzz_subcommand_args", "generate", "\n".join([
        "generate", "--load", "runs/demo", "--prompt", "In the beginning", "--max-new-tokens", "80", "--temperature",
        "0.7", "--top-k=0", "--top-p", "0.9", "--seed", "7", "--no-stop-at-eod", "--tokenizer-type", "GPT2BPETokenizer",
        "--vocab-file", "v.json", "--merge-file", "m.txt", "--tokenizer-model", "t.json", "--threads", "2"]))
    write(out, "fuzz_subcommand_args", "convert", "\n".join([
        "convert", "--load", "runs/demo/checkpoints", "--to", "safetensors", "--output", "runs/demo/model.safetensors",
        "--overwrite"]))
    write(out, "fuzz_subcommand_args", "convert_from_hf", "\n".join([
        "convert", "--from", "hf", "models/Llama-3.2-1B", "--output", "llama.safetensors",
        "--make-vocab-size-divisible-by", "64"]))
    write(out, "fuzz_subcommand_args", "report", "\n".join([
        "report", "a.log", "b.log.gz", "--csv", "ab.csv", "--html=ab.html"]))
    write(out, "fuzz_subcommand_args", "plan", "\n".join([
        "plan", "--model-preset", "gpt2-1.5b", "--micro-batch-size", "8", "--global-batch-size", "64", "--fp16",
        "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--world-size", "8",
        "--recompute-granularity", "full", "--hardware", "A100-80G", "--unfused-attention"]))
    write(out, "fuzz_subcommand_args", "plan_search", "\n".join([
        "plan", "--model-preset", "llama3-8b", "--global-batch-size", "512", "--bf16", "--hardware", "H100-SXM",
        "--search", "--gpus", "64", "--top", "3"]))
    write(out, "fuzz_subcommand_args", "coca_plan", "\n".join([
        "coca-plan", "--model-preset", "coca-b16", "--world-size", "4", "--zero-stage", "1", "--precision", "amp"]))
    write(out, "fuzz_subcommand_args", "coca_train", "\n".join([
        "coca-train", "--model", "coca", "--train-data", "train.jsonl", "--val-data", "val.jsonl", "--image-size", "64",
        "--patch-size", "8", "--vision-width", "128", "--vision-layers", "2", "--vision-heads", "4", "--epochs", "5",
        "--batch-size", "16", "--enable-deepspeed", "--zero-stage", "1", "--precision", "amp", "--optimizer", "lamb",
        "--grad-checkpointing", "--visual-lr", "2e-4", "--text-lr", "2e-5", "--visual-ld", "0.75", "--warmup", "20",
        "--grad-clip-norm", "5", "--zeroshot-frequency", "1"]))


if __name__ == "__main__":
    main()
