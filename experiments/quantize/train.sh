#!/usr/bin/env bash
# Trains every run of the table (3 seeds each; finished runs are reused): the demo setting, then the
# benchmark setting. Logs go to logs/train-<setting>.log. Then `node measure.mjs` exports and measures.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p logs
KD="node ../../bin/kdistill.js"
$KD compare demo-float-scratch.yaml demo-float-kd.yaml demo-qat-scratch.yaml demo-qat-kd.yaml --seeds 1,2,3 2>&1 | tee logs/train-demo.log
$KD compare bench-float-scratch.yaml bench-float-kd.yaml bench-qat-scratch.yaml bench-qat-kd.yaml --seeds 1,2,3 2>&1 | tee logs/train-bench.log
