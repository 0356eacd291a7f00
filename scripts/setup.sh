#!/usr/bin/env bash
# Sets up kdistill on a fresh Debian 12 machine: the system packages it builds and runs on
# (libtorch, an OpenBLAS, the Fashion-MNIST data), then the npm packages and the native addon.
# Safe to run again: installed packages are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in libtorch-dev libgloo-dev libopenblas0-pthread dataset-fashion-mnist chromium fonts-dejavu-core; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "kdistill setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# onnxruntime-node (optional, for ONNX teachers) must not try to download CUDA files offline.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
