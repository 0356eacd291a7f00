#!/bin/bash
cd /work/wt/zoo-gap
for r in 'wrn_16_1 3×32×32' 'wrn_16_1 1×28×28' 'resnet8 1×28×28'; do
  echo "== $r  $(uptime)"
  node /tmp/zg/ab.mjs "$r" 6 3 kd,kdTidy,pyTuned
done
echo "== end $(uptime)"
