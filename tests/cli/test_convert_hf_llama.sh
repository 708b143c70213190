# `loom convert --from hf`: a Hugging Face Llama directory becomes a weights file `loom train --load` takes
# (here with another vocabulary padding than the file's, as another tensor-parallel size would need);
# flags that describe another model are refused by name; bad input (no config.json, malformed JSON, another
# architecture, an unsupported rope_type, a missing tensor, a wrong shape, a stray tensor, a missing shard)
# gets one error line naming the file and tensor, exit 2, and no output file.
set -e
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
corpus small 20

# make_hf DIR [EDIT]: a random Llama (vocabulary 50257 as the GPT-2 tokenizer's, untied) in HF's format,
# one file or (EDIT=sharded) two shards and an index; EDIT also names the damage to do.
make_hf() {
  "$PY" - "$1" "${2:-}" <<'EOF'
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["LOOM_SOURCE_DIR"], "tests/parity"))
import numpy as np, llama_ref as lr, safetensors_np as st
d, edit = sys.argv[1], sys.argv[2]
os.makedirs(d, exist_ok=True)
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
       "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "hidden_act": "silu",
       "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False,
       "vocab_size": 50257, "max_position_embeddings": 64}
w = lr.init_weights(cfg, seed=1)
if edit == "arch": cfg["architectures"] = ["MistralForCausalLM"]
if edit == "rope": cfg["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
if edit == "missing": del w["model.layers.1.mlp.up_proj.weight"]
if edit == "shape": w["model.layers.0.self_attn.k_proj.weight"] = np.zeros((16, 32), np.float32)
if edit == "stray": w["model.layers.0.self_attn.q_proj.bias"] = np.zeros((32,), np.float32)
json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
if edit == "json": open(os.path.join(d, "config.json"), "w").write('{"hidden_size": 32,')
if edit in ("sharded", "shard"):
    names = list(w); a, b = names[: len(names) // 2], names[len(names) // 2:]
    st.save_file({n: w[n] for n in a}, os.path.join(d, "model-00001-of-00002.safetensors"))
    if edit == "sharded": st.save_file({n: w[n] for n in b}, os.path.join(d, "model-00002-of-00002.safetensors"), bf16=b)
    wm = {n: "model-0000%d-of-00002.safetensors" % (1 if n in a else 2) for n in names}
    json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
else:
    st.save_file(w, os.path.join(d, "model.safetensors"))
EOF
}

# The llama family's flags, spelled out (loom train does not expand --model yet).
TRAIN=(train --normalization RMSNorm --swiglu --position-embedding-type rope --disable-bias-linear --num-layers 2 --hidden-size 32 --num-attention-heads 4 --ffn-hidden-size 64
       --untie-embeddings-and-output-weights --seq-length 16 --max-position-embeddings 64 --micro-batch-size 2
       --global-batch-size 2 --train-iters 2 --lr 1e-4 --eval-iters 0 --log-interval 1
       --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")

# A sharded model (one shard bf16) imports; the file trains under other vocabulary padding (256 x TP1 = 50432
# rows against the file's 50304).
make_hf "$TMP/hf" sharded
run "$LOOM" convert --from hf "$TMP/hf" --output "$TMP/llama.safetensors"
[ "$CODE" -eq 0 ] || fail "import of a sharded HF Llama"
expect_line "wrote $TMP/llama.safetensors (Llama: 2 layers, hidden 32, 4 heads, 4 query groups, vocabulary 50257 padded to 50304, untied) from $TMP/hf"
run "$LOOM" "${TRAIN[@]}" --load "$TMP/llama.safetensors" --make-vocab-size-divisible-by 256
[ "$CODE" -eq 0 ] || fail "loom train --load of the imported weights"
expect_line " loading weights from $TMP/llama.safetensors"
grep -q "iteration        2/       2" <<<"$OUT" || fail "the imported model did not train 2 iterations"
expect_error "llama.safetensors holds another model (--rotary-base: file 10000, flags 500000)" \
  "$LOOM" "${TRAIN[@]}" --load "$TMP/llama.safetensors" --rotary-base 500000
expect_error "llama.safetensors holds another model (--untie-embeddings-and-output-weights: file 1, flags 0)" \
  "$LOOM" "${TRAIN[@]/--untie-embeddings-and-output-weights/--seed=1}" --load "$TMP/llama.safetensors"

# Bad input: one line naming the file (and tensor), exit 2, nothing written.
bad() {  # bad EDIT "message"
  rm -rf "$TMP/bad"
  make_hf "$TMP/bad" "$1"
  expect_error "$2" "$LOOM" convert --from hf "$TMP/bad" --output "$TMP/bad.safetensors"
  [ ! -e "$TMP/bad.safetensors" ] || fail "an output was written for bad input ($1)"
  [ -z "$(ls "$TMP" | grep -v '^bad$' | grep 'bad.safetensors')" ] || fail "a temporary file was left ($1)"
}
bad arch "$TMP/bad/config.json: architectures [\"MistralForCausalLM\"] is not supported (loom imports LlamaForCausalLM)"
bad rope "$TMP/bad/config.json: rope_scaling rope_type 'yarn' is not supported"
bad json "$TMP/bad/config.json: malformed JSON"
bad missing "$TMP/bad/model.safetensors: no tensor named 'model.layers.1.mlp.up_proj.weight'"
bad shape "$TMP/bad/model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [16, 32] but config.json implies [32, 32]"
bad stray "$TMP/bad/model.safetensors: tensor 'model.layers.0.self_attn.q_proj.bias' has no place"
bad shard "cannot open $TMP/bad/model-00002-of-00002.safetensors"
mkdir -p "$TMP/empty"
expect_error "cannot open $TMP/empty/config.json" "$LOOM" convert --from hf "$TMP/empty" --output "$TMP/x.safetensors"
expect_error "--from hf needs the model directory" "$LOOM" convert --from hf --output "$TMP/x.safetensors"
finish
