#!/bin/bash
cd /work/wt/zoo-gap
for r in 'wrn_16_1 1×28×28' 'wrn_16_1 3×32×32' 'resnet8 1×28×28'; do
  echo "== $r  $(uptime)"
  node /tmp/zg/ab.mjs "$r" 8 3 kd,kdColour,pyTuned
done
echo "== end $(uptime)"
