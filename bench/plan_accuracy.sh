#!/usr/bin/env bash
# How close `loom plan` comes to `loom train` on this machine: calibrate (`loom bench --calibrate`, one
# file for 1 rank and one measured under mpirun -np 2, so two ranks sharing the cores show in it), then
# for each of 8 layouts train a few iterations and set the plan's prediction beside the log
# (`loom plan --compare-log`): step time (median after the first iteration), model states, activations.
# Usage: bench/plan_accuracy.sh [build-dir]   (ITERS=8 by default)
source "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
MPI=(mpirun --allow-run-as-root --oversubscribe)
ITERS=${ITERS:-8}
MODEL=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256 --max-position-embeddings 256
       --hidden-dropout 0 --attention-dropout 0 --vocab-size 50257)
TRAIN=(--train-iters "$ITERS" --log-interval 1 --lr 1e-4 --eval-iters 0 --data-path "$TMP/kjv_text_document"
       --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt --initial-loss-scale 65536)
"${MPI[@]}" -np 1 "$LOOM" bench --calibrate --seconds-per-kernel 0.1 --output "$TMP/hw1.json" --name "this-vm-1rank" > "$TMP/cal1.txt"
"${MPI[@]}" -np 2 "$LOOM" bench --calibrate --seconds-per-kernel 0.1 --output "$TMP/hw2.json" --name "this-vm-2ranks" > "$TMP/cal2.txt"
cat "$TMP/cal2.txt"
LAYOUTS=("1|--micro-batch-size 4 --global-batch-size 8"
         "2|--micro-batch-size 4 --global-batch-size 8"
         "2|--micro-batch-size 4 --global-batch-size 8 --tensor-model-parallel-size 2"
         "2|--micro-batch-size 2 --global-batch-size 8 --pipeline-model-parallel-size 2"
         "2|--micro-batch-size 2 --global-batch-size 8 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1"
         "2|--micro-batch-size 4 --global-batch-size 8 --zero-stage 3"
         "2|--micro-batch-size 4 --global-batch-size 8 --tensor-model-parallel-size 2 --sequence-parallel --recompute-granularity selective"
         "1|--micro-batch-size 4 --global-batch-size 8 --bf16")
NAMES=("1 rank" "DP2" "TP2" "PP2 1F1B" "PP2 interleaved" "DP2 ZeRO-3" "TP2+SP selective" "bf16 1 rank")
# A first run, not reported: builds the dataset's index maps and warms the page cache.
"${MPI[@]}" -np 1 "$LOOM" train "${MODEL[@]}" "${TRAIN[@]}" --train-iters 2 --micro-batch-size 4 --global-batch-size 8 > /dev/null
printf "%-18s %12s %12s %7s | %10s %10s | %10s %10s\n" layout "measured ms" "predicted ms" ratio "states MB" predicted "act. MB" predicted
for i in "${!LAYOUTS[@]}"; do
  np=${LAYOUTS[$i]%%|*}
  flags=${LAYOUTS[$i]#*|}
  # shellcheck disable=SC2086
  "${MPI[@]}" -np "$np" "$LOOM" train "${MODEL[@]}" "${TRAIN[@]}" $flags > "$TMP/run_$i.log"
  # shellcheck disable=SC2086
  "$LOOM" plan "${MODEL[@]}" $flags --world-size "$np" \
    --hardware "$TMP/hw$np.json" --compare-log "$TMP/run_$i.log" > "$TMP/plan_$i.txt"
  cp "$TMP/run_$i.log" "${KEEP:-$TMP}/run_$i.log" 2>/dev/null || true
  field() { grep -E "^   $1" "$TMP/plan_$i.txt" | awk '{print $(NF-2), $(NF-1), $NF}'; }
  read -r m p r <<<"$(field 'elapsed time per iteration')"
  read -r sm sp _ <<<"$(field 'model states' || echo '- - -')"
  read -r am ap _ <<<"$(field 'activations' || echo '- - -')"
  printf "%-18s %12s %12s %7s | %10s %10s | %10s %10s\n" "${NAMES[$i]}" "$m" "$p" "$r" "$sm" "$sp" "$am" "$ap"
done

# CoCa (`loom train --model coca`, fp32, LAMB): the step time EVA-CLIP's ` Batch (t): ` prints (median
# after the first two steps) against `loom plan --model coca --hardware` on the same calibration files.
"$LOOM" make-images --output "$TMP/img" --num-train 256 --num-val 0 --image-size 64 --seed 1 > /dev/null
COCA=(--model coca --image-size 64 --patch-size 8 --vision-width 256 --vision-layers 4 --vision-heads 4
      --vision-mlp-hidden 682 --pooler-queries 64 --pooler-heads 8 --embed-dim 256 --text-width 256 --text-layers 4
      --text-heads 4 --text-mlp-hidden 1024 --decoder-layers 4 --text-context-length 77 --text-vocab-size 50257
      --batch-size 16 --optimizer lamb)
printf "\n%-18s %12s %12s %7s\n" "CoCa layout" "measured ms" "predicted ms" ratio
for np in 1 2; do
  "${MPI[@]}" -np "$np" "$LOOM" train "${COCA[@]}" --tokenizer-type GPT2BPETokenizer --vocab-file data/gpt2/vocab.json \
    --merge-file data/gpt2/merges.txt --train-data "$TMP/img/train.jsonl" --epochs 1 --workers 1 --lr 1e-4 \
    --log-every-n-steps 1 --save-frequency 1000 --val-frequency 1000 --logs "$TMP/clogs" --name "c$np" > "$TMP/coca_$np.log"
  m=$(sed -nE 's/.* Batch \(t\): ([0-9.]+),.*/\1/p' "$TMP/coca_$np.log" | tail -n +3 | sort -n |
      awk '{a[NR] = $1} END {printf "%.1f", 1000 * (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}')
  p=$("$LOOM" plan "${COCA[@]}" --world-size "$np" --hardware "$TMP/hw$np.json" |
      sed -nE 's/^ Batch \(t\): ([0-9.]+),.*/\1/p' | awk '{printf "%.1f", 1000 * $1}')
  printf "%-18s %12s %12s %7s\n" "CoCa $np rank(s)" "$m" "$p" "$(awk -v p="$p" -v m="$m" 'BEGIN {printf "%.3f", p / m}')"
done
