#!/usr/bin/env bash
# Runs every method of this folder for seeds 0 1 2, strictly one run at a time (the machine has
# 2 shared cores; each run uses 1 libtorch thread), then collects results into results/.
#   SEEDS="0" METHODS="kd bss" experiments/whom/run.sh     a subset
#   TEACHER=runs/x.safetensors experiments/whom/run.sh     another teacher file (development)
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS="${SEEDS:-0 1 2}"
METHODS="${METHODS:-scratch kd ta-chain dml online-kd bss bss-noattack adversarial-kd}"
OUT="${OUT:-$PWD/runs/whom}"
export OPENBLAS_NUM_THREADS=1 KDISTILL_QUIET=1
mkdir -p "$OUT"
for s in $SEEDS; do
  for m in $METHODS; do
    f="experiments/whom/$m.yaml"
    if [ -n "${TEACHER:-}" ]; then
      tmp="$(mktemp -d)"
      sed "s#../../assets/fashion-mnist-teacher.safetensors#$(realpath "$TEACHER")#" "$f" > "$tmp/$m.yaml"
      f="$tmp/$m.yaml"
    fi
    cmd=train
    grep -q '^teacher:' "$f" && cmd=distill
    echo "== $m seed $s" >&2
    start=$(date +%s)
    node bin/kdistill.js "$cmd" "$f" --seed "$s" --output "$OUT/$m-s$s" > "$OUT/$m-s$s.out" 2>&1 || { cat "$OUT/$m-s$s.out" >&2; exit 1; }
    echo "$(( $(date +%s) - start ))" > "$OUT/$m-s$s.seconds"
    tail -n 4 "$OUT/$m-s$s.out" >&2
  done
done
node experiments/whom/summarize.mjs "$OUT"
