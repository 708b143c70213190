# Zero-shot classification during `loom train --model coca` (EVA-CLIP's zero_shot_eval): after epochs 2
# and 3 of 3 with --zeroshot-frequency 2 (every 2nd epoch and the last), never after epoch 1; EVA-CLIP's
# four INFO lines and its Eval Epoch line (the zero-shot keys first, then the retrieval ones); top-1 /
# top-5 recomputed by an independent PyTorch script from the embeddings Loom dumps
# (LOOM_TEST_ZEROSHOT_DUMP), after checking those are what they should be: every template filled with
# every class name, every held-out image once (21 of them with batch 8: the last batch has 5) with its
# index's label. A CSV index with integer labels gives the same line. Bad input: one error line, exit 2.
set -e
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

"$LOOM" make-images --output "$TMP/shapes" --num-train 48 --num-val 21 --image-size 32 --seed 1 >/dev/null
# A CLIP vocabulary (start and end tokens of their own: the text tower pools at the first largest id).
/usr/bin/python3 "$SRC/scripts/clip_merges_from_captions.py" "$TMP/bpe.txt.gz" "$TMP/shapes/train.jsonl" >/dev/null
SMALL=(--model coca --image-size 32 --patch-size 8 --vision-width 32 --vision-layers 1 --vision-heads 2
       --vision-mlp-hidden 64 --text-width 32 --text-layers 1 --text-heads 2 --text-mlp-hidden 64 --decoder-layers 1
       --pooler-queries 4 --pooler-heads 2 --embed-dim 32 --text-context-length 16 --text-vocab-size 566
       --tokenizer-model "$TMP/bpe.txt.gz"
       --batch-size 8 --lr 1e-3 --warmup 2 --workers 1 --log-every-n-steps 100 --logs "$TMP/logs" --seed 3
       --train-data "$TMP/shapes/train.jsonl" --save-frequency 100)
ZS=(--zeroshot-frequency 2 --zeroshot-classes "$TMP/shapes/classes.json")

mkdir "$TMP/dump"
LOOM_TEST_ZEROSHOT_DUMP="$TMP/dump" run "$LOOM" train "${SMALL[@]}" "${ZS[@]}" --val-data "$TMP/shapes/val.jsonl" \
  --epochs 3 --name zs
[ "$CODE" -eq 0 ] || fail "training with zero-shot exited $CODE"
P='^[0-9]{4}-[0-9]{2}-[0-9]{2},[0-9:]{8} \| INFO \| '
[ "$(grep -cE "${P}Starting zero-shot imagenet\.$" <<<"$OUT")" -eq 2 ] || fail "expected 2 'Starting zero-shot imagenet.' lines"
for l in 'Building zero-shot classifier' 'Using classifier' 'Finished zero-shot imagenet\.'; do
  [ "$(grep -cE "${P}$l\$" <<<"$OUT")" -eq 2 ] || fail "expected 2 '$l' lines"
done
grep -qE "${P}Eval Epoch: 1 image_to_text_mean_rank: " <<<"$OUT" || fail "epoch 1: expected retrieval only"
grep -q 'Eval Epoch: 1 epoch' <<<"$OUT" && fail "zero-shot ran after epoch 1 (--zeroshot-frequency 2)"
F='[0-9]\.[0-9]{4}'
for e in 2 3; do
  grep -qE "${P}Eval Epoch: $e epoch: $e\.0000	imagenet-zeroshot-val-top1: $F	imagenet-zeroshot-val-top5: $F	image_to_text_mean_rank: [0-9.]+	" <<<"$OUT" ||
    fail "epoch $e: no Eval Epoch line with the zero-shot metrics before the retrieval ones"
done
[ -f "$TMP/dump/zeroshot_epoch_2.json" ] && [ -f "$TMP/dump/zeroshot_epoch_3.json" ] && [ ! -e "$TMP/dump/zeroshot_epoch_1.json" ] ||
  fail "expected dumps of epochs 2 and 3 only"
echo "$OUT" > "$TMP/zs.log"

/usr/bin/python3 - "$TMP/zs.log" "$TMP/dump" "$TMP/shapes" <<'PYEOF' || fail "the zero-shot numbers differ from the independent computation"
# Independent of Loom: EVA-CLIP's zero_shot.py (zero_shot_classifier, run, accuracy) in PyTorch on the
# dumped embeddings, and its f"{k}: {round(v, 4):.4f}" line.
import json, re, sys
import torch
import torch.nn.functional as F
log, dump_dir, shapes = sys.argv[1:4]
meta = json.load(open(shapes + "/classes.json"))
val = [json.loads(l) for l in open(shapes + "/val.jsonl") if l.strip()]
lines = {int(m.group(1)): m.group(0) for m in re.finditer(r"Eval Epoch: (\d+) epoch: .*", open(log).read())}
for epoch in (2, 3):
    d = json.load(open("%s/zeroshot_epoch_%d.json" % (dump_dir, epoch)))
    assert d["classes"] == meta["classes"] and d["templates"] == meta["templates"]
    C, T = len(meta["classes"]), len(meta["templates"])
    # The texts: each class's templates, filled as str.format does.
    assert d["texts"] == [[t.format(c) for t in meta["templates"]] for c in meta["classes"]], "template texts"
    # Every held-out image exactly once, with its line's label.
    assert sorted(d["entries"]) == list(range(len(val))), "not every image once: %s" % sorted(d["entries"])
    assert d["labels"] == [meta["classes"].index(val[e]["label"]) for e in d["entries"]], "labels"
    E = len(d["image_latents"][0])
    text = torch.tensor(d["text_latents"], dtype=torch.float64).reshape(C, T, E)
    weights = []
    for c in range(C):  # zero_shot_classifier
        emb = F.normalize(text[c], dim=-1).mean(dim=0)
        emb /= emb.norm()
        weights.append(emb)
    classifier = torch.stack(weights, dim=1)
    image = F.normalize(torch.tensor(d["image_latents"], dtype=torch.float64), dim=-1)
    logits = 100.0 * image @ classifier
    target = torch.tensor(d["labels"])
    pred = logits.topk(5, 1, True, True)[1].t()  # accuracy()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    top1 = float(correct[:1].reshape(-1).float().sum()) / len(val)
    top5 = float(correct[:5].reshape(-1).float().sum()) / len(val)
    s = torch.sort(logits, dim=1, descending=True)[0]
    margin = float(torch.min(torch.minimum(s[:, 0] - s[:, 1], s[:, 4] - s[:, 5])))
    metrics = {"epoch": int(epoch), "imagenet-zeroshot-val-top1": top1, "imagenet-zeroshot-val-top5": top5}
    want = "Eval Epoch: %d " % epoch + "\t".join(f"{k}: {round(v, 4):.4f}" for k, v in metrics.items())
    got = lines[epoch]
    assert got.startswith(want + "\t"), "epoch %d:\n got  %s\n want %s" % (epoch, got, want)
    print("epoch %d: top-1 %.4f top-5 %.4f over %d images (smallest top-1/top-5 score margin %.2e)"
          % (epoch, top1, top5, len(val), margin))
PYEOF

# The same set as a CSV index with integer labels (class indices), evaluated on --zeroshot-data with
# --zeroshot-label-key, training on a CSV copy of the training index (--dataset-type applies to both):
# the same zero-shot numbers (and no retrieval: no --val-data).
/usr/bin/python3 - "$TMP/shapes" <<'PYEOF'
import json, sys
d = sys.argv[1]
classes = json.load(open(d + "/classes.json"))["classes"]
with open(d + "/val.csv", "w") as f:
    f.write("filepath\ttitle\tclass_id\n")
    for l in open(d + "/val.jsonl"):
        j = json.loads(l)
        f.write("%s\t%s\t%d\n" % (j["image"], j["caption"], classes.index(j["label"])))
with open(d + "/train.csv", "w") as f:
    f.write("filepath\ttitle\n")
    for l in open(d + "/train.jsonl"):
        j = json.loads(l)
        f.write("%s\t%s\n" % (j["image"], j["caption"]))
PYEOF
run "$LOOM" train "${SMALL[@]}" "${ZS[@]}" --zeroshot-data "$TMP/shapes/val.csv" --zeroshot-label-key class_id \
  --dataset-type csv --train-data "$TMP/shapes/train.csv" --epochs 3 --name csv
[ "$CODE" -eq 0 ] || fail "the CSV run exited $CODE"
for e in 2 3; do
  want=$(grep -oE "Eval Epoch: $e epoch: [^	]*	[^	]*	imagenet-zeroshot-val-top5: [0-9.]+" "$TMP/zs.log")
  got=$(grep -oE "Eval Epoch: $e .*" <<<"$OUT")
  [ -n "$want" ] && [ "$got" = "$want" ] || fail "epoch $e: the CSV run's line '$got' is not '$want'"
done

# Bad input: one error line, exit 2, before any training.
B=("${SMALL[@]}" --val-data "$TMP/shapes/val.jsonl" --epochs 1)
expect_error "--zeroshot-frequency 1 needs --zeroshot-classes FILE" "$LOOM" train "${B[@]}" --zeroshot-frequency 1 --name b1
expect_error "need --zeroshot-frequency N" "$LOOM" train "${B[@]}" --zeroshot-classes "$TMP/shapes/classes.json" --name b2
expect_error "--zeroshot-frequency must not be negative" "$LOOM" train "${B[@]}" --zeroshot-frequency -1 --name b3
expect_error "needs labelled images: --zeroshot-data INDEX or --val-data INDEX" "$LOOM" train "${SMALL[@]}" "${ZS[@]}" --name b4
/usr/bin/python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])][:2]
del lines[1]["label"]
open(sys.argv[2], "w").write("".join(json.dumps(l) + "\n" for l in lines))' "$TMP/shapes/val.jsonl" "$TMP/nolabel.jsonl"
expect_error "nolabel.jsonl' line 2: has no 'label' key (the class label zero-shot classification needs)" \
  "$LOOM" train "${B[@]}" "${ZS[@]}" --zeroshot-data "$TMP/nolabel.jsonl" --name b5
# A class-names file without "red square" (the first class): the first val line labelled so is named.
/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1])); m["classes"] = m["classes"][1:]; json.dump(m, open(sys.argv[2], "w"))' \
  "$TMP/shapes/classes.json" "$TMP/fewer.json"
line=$(/usr/bin/python3 -c '
import json, sys
print(next(i + 1 for i, l in enumerate(open(sys.argv[1])) if json.loads(l)["label"] == "red square"))' "$TMP/shapes/val.jsonl")
expect_error "val.jsonl' line $line: label 'red square' is not one of the 11 classes of the class-names file" \
  "$LOOM" train "${B[@]}" --zeroshot-frequency 1 --zeroshot-classes "$TMP/fewer.json" --name b6
printf 'red square\nblue circle\n' > "$TMP/two.txt"
printf '{"image": "val_000000.jpg", "caption": "x", "label": 2}\n' > "$TMP/shapes/int.jsonl"
expect_error "int.jsonl' line 1: label 2 is outside the 2 classes of the class-names file (0..1)" \
  "$LOOM" train "${B[@]}" --zeroshot-frequency 1 --zeroshot-classes "$TMP/two.txt" --zeroshot-data "$TMP/shapes/int.jsonl" --name b7
expect_error "--zeroshot-classes $TMP/none.json: cannot be read" "$LOOM" train "${B[@]}" --zeroshot-frequency 1 \
  --zeroshot-classes "$TMP/none.json" --name b8
echo '{"classes": ["a", "b", "a"]}' > "$TMP/dup.json"
expect_error "the class name 'a' appears twice" "$LOOM" train "${B[@]}" --zeroshot-frequency 1 --zeroshot-classes "$TMP/dup.json" --name b9
echo '{"classes": ["a"], "templates": ["a {0} photo"]}' > "$TMP/tmpl.json"
expect_error "zero-shot template 'a {0} photo': only '{}' fields" "$LOOM" train "${B[@]}" --zeroshot-frequency 1 \
  --zeroshot-classes "$TMP/tmpl.json" --name b10
echo '{"classes": "a b"}' > "$TMP/notlist.json"
expect_error "'classes' is not a list of strings" "$LOOM" train "${B[@]}" --zeroshot-frequency 1 --zeroshot-classes "$TMP/notlist.json" --name b11
[ ! -e "$TMP/logs/b6" ] || fail "a run with bad zero-shot input created its directory"
finish
