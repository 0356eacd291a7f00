#!/usr/bin/env bash
# Reproduces the student rows of Hinton, Vinyals & Dean (2015) §3 from the committed teacher
# (assets/hinton-mnist-teacher.safetensors): scratch, distilled at T = 20, omitted-3 and 7-and-8
# (each with its bias adjustment), 3 seeds each, two runs at a time (one per core), then prints the
# table next to the paper's numbers (plus the T = 2 row chosen on validation). About 35 minutes on
# this 2-core machine (an 800-800 run: 4-6 min with two at a time); finished runs are reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds="${SEEDS:-1,2,3}"
k() { node bin/kdistill.js "$@"; }
(k compare experiments/hinton-mnist/scratch.yaml experiments/hinton-mnist/omit3.yaml --seeds "$seeds") & a=$!
(k compare experiments/hinton-mnist/kd-t20.yaml experiments/hinton-mnist/only78.yaml experiments/hinton-mnist/kd-t2.yaml --seeds "$seeds") & b=$!
wait "$a" && wait "$b"   # a failed lane fails the script (set -e)
k demo --paper hinton --from runs/hinton-mnist
