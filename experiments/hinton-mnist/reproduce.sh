#!/usr/bin/env bash
# Reproduces the student rows of Hinton, Vinyals & Dean (2015) §3 from the committed teacher
# (assets/hinton-mnist-teacher.safetensors): scratch, distilled at T = 20, omitted-3 and 7-and-8
# (each with its bias adjustment), 3 seeds each, two runs at a time (one per core), then prints the
# table next to the paper's numbers. About 70 minutes on a 2-core machine; finished runs are reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds="${SEEDS:-1,2,3}"
k() { node bin/kdistill.js "$@"; }
(k compare experiments/hinton-mnist/scratch.yaml experiments/hinton-mnist/omit3.yaml --seeds "$seeds") &
(k compare experiments/hinton-mnist/kd-t20.yaml experiments/hinton-mnist/only78.yaml --seeds "$seeds") &
wait
k demo --paper hinton --from runs/hinton-mnist
