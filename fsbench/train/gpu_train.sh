#!/usr/bin/env bash
# Trains a training bundle's recipe (`fsbench bundle`) on a machine with no network, such as a lent GPU, and leaves
# what comes back in DEST:
#   NAME.partNN    the exported weights (safetensors: the networks the method ships, no training state) in parts of
#                  at most PART_MIB MiB (default 15); `cat NAME.part* > NAME` joins them
#   NAME.sha256    `sha256sum -c NAME.sha256` checks the joined file
#   train.log      this run's output (written as it goes, so a failed run leaves it too)
#   run.tar.gz     each phase's losses.jsonl and last sample grid
# Checkpoints, optimisers and discriminators stay in the run folder.
#
#   fsbench/train/gpu_train.sh BUNDLE DEST [MINUTES]        (from the repository root)
#
# MINUTES (default 7) is the training time limit (`fsbench train --time-limit`); DEVICE (default cuda) the torch
# device; PYTHON (default python3) the interpreter; RUN_DIR (default a new temporary folder) the run folder. fsbench
# is installed from the checkout (editable, from no index, without dependencies) when the interpreter does not know
# it, so that its methods are registered.
set -euo pipefail
shopt -s nullglob
usage="usage: fsbench/train/gpu_train.sh BUNDLE DEST [MINUTES]"
bundle=${1:?$usage}
dest=${2:?$usage}
minutes=${3:-7}
python=${PYTHON:-python3}
run=${RUN_DIR:-$(mktemp -d)/run}
mkdir -p "$dest" "$run"
dest=$(cd "$dest" && pwd)
run=$(cd "$run" && pwd)

"$python" -c 'import importlib.metadata as m; m.distribution("fsbench")' 2>/dev/null ||
    "$python" -m pip install --quiet --no-index --no-deps --no-build-isolation --editable .
PYTHONUNBUFFERED=1 "$python" -m fsbench train --bundle "$bundle" --out "$run" --device "${DEVICE:-cuda}" \
    --time-limit "$minutes" 2>&1 | tee "$dest/train.log"

weights=$(sed -n 's/^weights: //p' "$dest/train.log" | tail -n 1)
name=$(basename "$weights")
split --bytes="${PART_MIB:-15}M" --numeric-suffixes "$weights" "$dest/$name.part"
(cd "$(dirname "$weights")" && sha256sum "$name") >"$dest/$name.sha256"
cd "$run"
tar -czf "$dest/run.tar.gz" ./*/losses.jsonl $(for samples in ./*/samples; do ls "$samples"/*.png | tail -n 1; done)
tail -n 1 ./*/losses.jsonl
ls -l "$dest"
