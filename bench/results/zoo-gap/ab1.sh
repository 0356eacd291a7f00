#!/bin/bash
cd /work/wt/zoo-gap
for r in 'wrn_16_1 1×28×28' 'resnet8 1×28×28' 'resnet20 3×32×32'; do
  echo "== $r  $(uptime)"
  node /tmp/zg/ab.mjs "$r" 6 3
done
echo "== end $(uptime)"
