#!/usr/bin/env bash
# The view cache's consistency experiment (README.md here): KD and DKD at the settings their
# benchmark sweeps chose, each with three teacher signals (views | on | off), seeds 1, 2, 3.
# A fresh cache folder, so the view cache is built here (once per seed's subset; the six
# configurations share it). Finished runs are reused. Log: logs/run.log.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p logs
export KDISTILL_CACHE=../../runs/view-cache/.cache
uptime | tee logs/run.log
time node ../../bin/kdistill.js compare kd-views.yaml kd-on.yaml kd-off.yaml dkd-views.yaml dkd-on.yaml dkd-off.yaml \
  --seeds 1,2,3 --out ../../runs/view-cache 2>&1 | tee -a logs/run.log
uptime | tee -a logs/run.log
