#!/bin/bash
T='MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=1073741824'
for i in 1 2 3; do
  OPENBLAS_NUM_THREADS=1 node /tmp/zg/ops.mjs | tail -1
  env OPENBLAS_NUM_THREADS=1 $T /usr/bin/python3 /tmp/zg/ops.py
done
