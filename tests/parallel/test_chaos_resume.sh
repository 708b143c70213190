# The chaos test of resume, small: DP2 x PP2, ZeRO-1, async saves every 2 iterations, 5 random SIGKILLs of a
# random rank, each followed by a restart from the latest checkpoint; equal to one uninterrupted
# run. The long run (30 kills) is `scripts/chaos_resume.sh` with its defaults.
: "${MPIRUN:?}" "${LOOM:?}" "${LOOM_SOURCE_DIR:?}"
MPIRUN=$MPIRUN LOOM=$LOOM timeout -k 5 540 bash "$LOOM_SOURCE_DIR/scripts/chaos_resume.sh" --kills 5 --iters 24 \
  --save-interval 2 --seed 17
