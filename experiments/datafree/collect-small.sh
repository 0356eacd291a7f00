#!/usr/bin/env bash
# Copies what the reduced-scale results (README.md) rest on from runs/datafree into results-small/:
# each finished *-small run's result.json and run.json, and its log.jsonl whole (these runs are
# short: the per-step loss terms, DAFL's generator losses among them, are a few hundred lines);
# the synthesis record; and the pictures next to README.md, which links them.
set -euo pipefail
cd "$(dirname "$0")"
src=../../runs/datafree
for d in $(cd "$src" && find . -path '*-small*' -name result.json -printf '%h\n' | sort); do
  mkdir -p "results-small/$d"
  cp "$src/$d/result.json" "$src/$d/run.json" "$src/$d/log.jsonl" "results-small/$d/"
done
if [ -f "$src/deepinversion-small-images/synthesis.json" ]; then
  mkdir -p results-small/deepinversion-small-images
  cp "$src/deepinversion-small-images/synthesis.json" results-small/deepinversion-small-images/
  cp "$src/deepinversion-small-images/samples.png" deepinversion-small-samples.png
fi
if [ -f "$src/dafl-small/seed1/samples.png" ]; then cp "$src/dafl-small/seed1/samples.png" dafl-small-samples.png; fi
