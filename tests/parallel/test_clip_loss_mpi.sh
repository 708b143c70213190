# CoCa's contrastive loss on 2 and 4 data-parallel ranks (real processes under mpirun) equals real
# torch.distributed processes running open_clip's ClipLoss rank by rank, and its data-parallel average
# equals one process on the whole batch (clip_loss_mpi_check.py; within 1e-5).
set -u
: "${MPIRUN:?}" "${LAYOUT_DRIVER:?}"
HERE=$(cd "$(dirname "$0")" && pwd)
DRIVER=$(dirname "$LAYOUT_DRIVER")/clip_loss_driver
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 "$HERE/clip_loss_mpi_check.py" "$MPIRUN" "$DRIVER" "$TMP"
