#!/usr/bin/env bash
# Train the default models and their deterministic baselines in parallel on one machine (one GPU
# is plenty: the models are small), each for the same wall-clock budget with its schedule fitted
# to the measured speed. Training sets come packed (varsr-train --pack), so the machine needs no
# data folders. Results are tarred per run (bundle, log.csv, last sample grid) into OUT_DIR.
#
#   tools/train_all_parallel.sh PACK_DIR OUT_DIR MINUTES [RUN...]
#
# RUN is a config name (trains it and its -det baseline) or NAME@section.key=value[,...] for a
# variant without a baseline, e.g. face-8@train.lambda_kl=0.02 (run folder face-8-lambda_kl0.02).
set -uo pipefail
PACKS=${1:?pack dir}; OUT=${2:?out dir}; MINUTES=${3:?minutes}; shift 3
RUNS=${*:-face-8 face-16 digit plate-char plate-3x6 plate-4x8}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$OUT"
pids=()
launch() {  # name config extra-args...
  local name=$1 cfg=$2; shift 2
  local pack=$cfg; case $cfg in face-*) pack=faces64 ;; esac
  $PY -m core.cli.train --config "$cfg" --packed "$PACKS/$pack.npz" --out "runs/$name" \
    --max-minutes "$MINUTES" --fit-schedule ${EXTRA_SET:-} "$@" > "runs/$name.log" 2>&1 &
  pids+=($!)
}
mkdir -p runs
for run in $RUNS; do
  cfg=${run%%@*}
  if [[ $run == *@* ]]; then
    sets=(); suffix=""
    IFS=',' read -ra kvs <<< "${run#*@}"
    for kv in "${kvs[@]}"; do sets+=(--set "$kv"); k=${kv%%=*}; suffix+="-${k#*.}${kv#*=}"; done
    launch "$cfg$suffix" "$cfg" "${sets[@]}"
  else
    launch "$cfg" "$cfg"
    launch "$cfg-det" "$cfg" --det
  fi
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
# at most 8 files may come back from a lent machine, 16 MiB each: fill 15 MiB tars greedily
part=0; size=0; limit=$((15 * 1024 * 1024))
for d in runs/*/; do
  name=$(basename "$d")
  files=(bundle log.csv)
  last=$(ls "$d"samples/*.png 2>/dev/null | tail -1)
  [ -n "$last" ] && cp "$last" "$d/last_samples.png" && files+=(last_samples.png)
  tail -c 2000 "runs/$name.log" > "$d/train_tail.log"; files+=(train_tail.log)
  tar -C runs -cf "runs/$name.tar" "${files[@]/#/$name/}"
  s=$(stat -c %s "runs/$name.tar")
  if (( size > 0 && size + s > limit )); then part=$((part + 1)); size=0; fi
  tar -Af "$OUT/runs_$part.tar" "runs/$name.tar" 2>/dev/null || cp "runs/$name.tar" "$OUT/runs_$part.tar"
  size=$((size + s))
done
exit $status
