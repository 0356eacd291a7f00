#!/bin/sh
# Runs the issue-6 experiments over seeds 1, 2, 3, one run at a time (threads: 1 each), prints
# the mean ± std tables and copies each run's log.jsonl and result.json into results/.
#
#   sh experiments/features/run.sh                 from the repository root
#   TEACHER=runs/x/model.safetensors sh experiments/features/run.sh   another teacher file: the
#       experiment files are copied with the teacher path replaced (e.g. the teacher run's own
#       model.safetensors before it is copied to assets/); add DEV=1 to keep the outputs apart
#       (runs/features-dev) and out of results/.
#
# Finished runs are reused by `kdistill compare` (same experiment text and seed).
set -eu
cd "$(dirname "$0")/../.."
dir=experiments/features
out=runs/features
files_low="lowdata-kd lowdata-sobolev1 lowdata-sobolev1-w1 lowdata-targetgrad"
# lowdata-sobolev12.yaml diverged (non-finite order-1 gradient at step 47, seed 1): see README
files_cnn="cnn-kd cnn-fitnet cnn-at"
src=$dir
if [ -n "${DEV:-}" ]; then out=runs/features-dev; fi
if [ -n "${TEACHER:-}" ]; then
  src=$(mktemp -d)
  for f in $files_low $files_cnn; do
    sed -e "s#../../assets/fashion-mnist-teacher.safetensors#$(pwd)/$TEACHER#" -e "s#output: ../../runs/features/#output: $(pwd)/$out/#" "$dir/$f.yaml" > "$src/$f.yaml"
  done
fi
for group in low cnn; do
  eval "files=\$files_$group"
  args=""
  for f in $files; do args="$args $src/$f.yaml"; done
  # each experiment writes to its own output folder, <output>/seed<N>
  mkdir -p "$out"
  node bin/kdistill.js compare $args --seeds "${SEEDS:-1,2,3}" | tee "$out/$group-table.txt"
done
if [ -z "${DEV:-}" ]; then
  for group in low cnn; do
    for run in $(for f in $(eval "echo \$files_$group"); do echo "$out/$f"/seed*; done); do
      [ -f "$run/result.json" ] || continue
      name=$(basename "$(dirname "$run")")-$(basename "$run")
      mkdir -p "$dir/results/$name"
      cp "$run/log.jsonl" "$run/result.json" "$dir/results/$name/"
    done
    cp "$out/$group-table.txt" "$dir/results/$group-table.txt"
  done
fi
