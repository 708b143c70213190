# EVA-CLIP's parameter groups under ZeRO-1 on 3 processes (each rank a third of every padded tensor: some slices
# partial or empty): each rank updates its slice with its group's lr and weight decay (LAMB: trust ratios
# from norms summed over the slices), and the all-gathered weights equal the PyTorch references of
# tests/parity/test_optim_groups.py as one process does.
set -u
: "${MPIRUN:?}" "${LOOM:?}" "${LOOM_SOURCE_DIR:?}"
exec /usr/bin/python3 "$LOOM_SOURCE_DIR/tests/parity/test_optim_groups.py" --mpirun "$MPIRUN" --np 3
