#!/usr/bin/env bash
# The medium-scale data-free experiments (README.md "Medium scale"), in parts that can run side by
# side, one process each: `run-medium.sh teachers`, then `dafl 1`, `dafl 2`, `dafl 3`, `di`
# (synthesis, its student and its real-data reference), `refs` (DAFL's real-data references), and
# `table` (prints every comparison from the finished runs). Logs in logs-medium/.
set -euo pipefail
cd "$(dirname "$0")"
KD="node ../../bin/kdistill.js"
L=logs-medium
mkdir -p $L
part=${1:?usage: run-medium.sh teachers|dafl N|di|refs|table}
echo "$part ${2:-} start $(date -u +%FT%TZ) $(uptime)" >> $L/load.txt
case "$part" in
  teachers)
    [ -f ../../runs/datafree/teacher/model.safetensors ] || $KD train teacher.yaml > $L/teacher.log 2>&1
    [ -f ../../runs/datafree/teacher-bn/model.safetensors ] || $KD train teacher-bn.yaml --epochs 2 > $L/teacher-bn.log 2>&1 ;;
  dafl) $KD compare dafl-medium.yaml --seeds "$2" > $L/dafl-medium-seed$2.log 2>&1 ;;
  di)
    $KD synthesize deepinversion-medium.yaml > $L/deepinversion-medium.log 2>&1
    $KD compare deepinversion-kd-medium.yaml kd-real-bn-medium.yaml --seeds 1,2,3 > $L/deepinversion-kd-medium.log 2>&1 ;;
  refs) $KD compare kd-real-medium.yaml scratch-medium.yaml --seeds 1,2,3 > $L/real-medium.log 2>&1 ;;
  table)
    $KD compare dafl-medium.yaml kd-real-medium.yaml scratch-medium.yaml --seeds 1,2,3 > $L/table-dafl.txt 2>&1
    $KD compare deepinversion-kd-medium.yaml kd-real-bn-medium.yaml --seeds 1,2,3 > $L/table-deepinversion.txt 2>&1 ;;
esac
echo "$part ${2:-} end $(date -u +%FT%TZ) $(uptime)" >> $L/load.txt
