#!/usr/bin/env bash
# Runs the medium-scale data-free experiments (README.md "Medium scale"): the two teachers, then
# two chains side by side (one core each): DAFL's three seeds with their real-data references, and
# the DeepInversion synthesis with its student and reference. Logs in logs-medium/.
set -euo pipefail
cd "$(dirname "$0")"
KD="node ../../bin/kdistill.js"
L=logs-medium
[ -f ../../runs/datafree/teacher/model.safetensors ] || $KD train teacher.yaml > $L/teacher.log 2>&1
[ -f ../../runs/datafree/teacher-bn/model.safetensors ] || $KD train teacher-bn.yaml --epochs 2 > $L/teacher-bn.log 2>&1
echo "start $(date -u +%FT%TZ) $(uptime)" >> $L/load.txt
( $KD compare dafl-medium.yaml --seeds 1,2,3 > $L/dafl-medium.log 2>&1
  $KD compare kd-real-medium.yaml scratch-medium.yaml --seeds 1,2,3 > $L/real-medium.log 2>&1
  echo "dafl chain end $(date -u +%FT%TZ) $(uptime)" >> $L/load.txt ) &
( $KD synthesize deepinversion-medium.yaml > $L/deepinversion-medium.log 2>&1
  $KD compare deepinversion-kd-medium.yaml kd-real-bn-medium.yaml --seeds 1,2,3 > $L/deepinversion-kd-medium.log 2>&1
  echo "deepinversion chain end $(date -u +%FT%TZ) $(uptime)" >> $L/load.txt ) &
wait
