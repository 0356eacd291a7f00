#!/usr/bin/env bash
# Copies what the committed results rest on from runs/hinton-mnist into logs/: each run's result.json,
# run.json and the epoch records of its log.jsonl (the per-step records are left out: ~2.5 MB a run).
set -euo pipefail
cd "$(dirname "$0")"
src=../../runs/hinton-mnist
for d in $(cd "$src" && find . -name result.json -printf '%h\n' | sort); do
  mkdir -p "logs/$d"
  cp "$src/$d/result.json" "$src/$d/run.json" "logs/$d/"
  grep -v '"type":"step"' "$src/$d/log.jsonl" > "logs/$d/epochs.jsonl" || true
done
