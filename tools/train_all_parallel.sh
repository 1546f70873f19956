#!/usr/bin/env bash
# Train every default model and its deterministic baseline in parallel on one machine (one GPU
# is plenty: the models are small), each for the same wall-clock budget with its schedule fitted
# to the measured speed. Training sets come packed (varsr-train --pack), so the machine needs
# no data folders:  tools/train_all_parallel.sh PACK_DIR OUT_DIR MINUTES [CONFIG...]
set -uo pipefail
PACKS=${1:?pack dir}; OUT=${2:?out dir}; MINUTES=${3:?minutes}; shift 3
CONFIGS=${*:-face-8 face-16 digit plate-char}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$OUT"
pids=()
for cfg in $CONFIGS; do
  case $cfg in face-*) pack=faces64 ;; *) pack=$cfg ;; esac
  for det in "" "--det"; do
    name=$cfg${det:+-det}
    $PY -m core.cli.train --config "$cfg" $det --packed "$PACKS/$pack.npz" --out "runs/$name" \
      --max-minutes "$MINUTES" --fit-schedule ${EXTRA_SET:-} > "$OUT/$name.log" 2>&1 &
    pids+=($!)
  done
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
for d in runs/*/; do
  name=$(basename "$d")
  mkdir -p "$OUT/$name"
  cp -r "$d/bundle" "$d/log.csv" "$OUT/$name/" 2>/dev/null
  ls "$d"/samples/*.png >/dev/null 2>&1 && cp "$(ls "$d"/samples/*.png | tail -1)" "$OUT/$name/last_samples.png"
done
exit $status
