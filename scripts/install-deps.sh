#!/usr/bin/env bash
# Installs the Debian packages Loom builds and tests with; a no-op when they are all present.
set -euo pipefail
pkgs=(build-essential cmake ccache pkg-config libopenblas-openmp-dev libdnnl-dev libopenmpi-dev openmpi-bin
      libpcre2-dev libsentencepiece-dev sentencepiece python3-sentencepiece nlohmann-json3-dev zlib1g-dev libgtest-dev libbenchmark-dev python3-torch python3-numpy
      libjpeg-dev libpng-dev python3-pil python3-torchvision
      python3-regex  # the CLIP tokenizer's Python reference (tests/parity/test_clip_tokenizer.py)
      chromium fonts-dejavu-core python3-crcmod
      clang-14 libclang-rt-14-dev)  # clang + libFuzzer: scripts/fuzz.sh
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
