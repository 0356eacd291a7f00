#!/usr/bin/env bash
# Copies finished sweeps' records into results/<method>/ for the commit: sweep.json, sweep.md,
# best.yaml and each final seed's run.json, result.json and log.jsonl (not the models or the
# trials, which stay in runs/benchmark/<method>-sweep). A sweep whose final seeds have not all
# finished is skipped with a message. Usage: ./collect.sh kd dkd …
set -euo pipefail
cd "$(dirname "$0")"
for m in "$@"; do
  src=../../runs/benchmark/$m-sweep
  seeds=$(node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); if (r.final) console.log(r.final.seeds.join(" "))' "$src/sweep.json" 2>/dev/null || true)
  if [ -z "$seeds" ]; then echo "collect: $m has no finished final seeds yet ($src)"; continue; fi
  mkdir -p "results/$m"
  cp "$src/sweep.json" "$src/sweep.md" "$src/best.yaml" "results/$m/"
  for s in $seeds; do
    mkdir -p "results/$m/seed$s"
    cp "$src/best/seed$s/run.json" "$src/best/seed$s/result.json" "$src/best/seed$s/log.jsonl" "results/$m/seed$s/"
  done
  echo "collect: $m (seeds $seeds)"
done
