#!/usr/bin/env bash
# Copies what the results at one scale (README.md) rest on from runs/datafree into results-<scale>/:
# each finished *-<scale> run's result.json and run.json, and its log.jsonl whole (these runs are
# short: the per-step loss terms, DAFL's generator losses among them, are a few thousand lines at
# most); the synthesis record; and the pictures next to README.md, which links them.
# Usage: collect.sh small|medium
set -euo pipefail
cd "$(dirname "$0")"
scale=${1:?usage: collect.sh small|medium}
src=../../runs/datafree
for d in $(cd "$src" && find . -path "*-$scale*" -name result.json -printf '%h\n' | sort); do
  mkdir -p "results-$scale/$d"
  cp "$src/$d/result.json" "$src/$d/run.json" "$src/$d/log.jsonl" "results-$scale/$d/"
done
if [ -f "$src/deepinversion-$scale-images/synthesis.json" ]; then
  mkdir -p "results-$scale/deepinversion-$scale-images"
  cp "$src/deepinversion-$scale-images/synthesis.json" "results-$scale/deepinversion-$scale-images/"
  cp "$src/deepinversion-$scale-images/samples.png" "deepinversion-$scale-samples.png"
fi
for s in 1 2 3; do
  if [ -f "$src/dafl-$scale/seed$s/samples.png" ]; then cp "$src/dafl-$scale/seed$s/samples.png" "dafl-$scale-seed$s-samples.png"; fi
done
