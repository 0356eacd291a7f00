#!/usr/bin/python3
"""PyTorch side of bench/memory.ts: the same 784-256-256-10 MLP (raw parameters, same init), batch
128, Adam lr 1e-3 (or SGD lr 0.05 momentum 0.9), the same 16-batch host dataset copied into fresh
tensors every step, 1 torch thread. Samples RSS (VmRSS from /proc/self/status, i.e. statm's
resident pages x page size) after gc.collect() at the warm-up step, every --every steps and at
the end; progress goes to stderr, and one JSON line to stdout:
  {"side": "pytorch", "steps", "warmupStep", "samples": [{"step", "rss"}], "peakRss", "msPerStep", "info"}
RSS in MiB; peakRss is VmHWM.
Usage: memory.py [--steps 20000] [--every 1000] [--optim adam|sgd] [--warmup 1000]
"""
import argparse
import gc
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from _common import status_mib

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=20000)
ap.add_argument("--every", type=int, default=1000)
ap.add_argument("--optim", default="adam", choices=["adam", "sgd"])
ap.add_argument("--warmup", type=int, default=None)
a = ap.parse_args()
steps, every = a.steps, a.every
warmup = a.warmup if a.warmup is not None else min(1000, max(1, steps // 10))
BATCH = 128
SIZES = [784, 256, 256, 10]


torch.set_num_threads(1)
torch.manual_seed(0)
params = []
for i in range(len(SIZES) - 1):
    bound = 1 / SIZES[i] ** 0.5
    params.append(torch.rand([SIZES[i + 1], SIZES[i]]).mul_(2 * bound).add_(-bound).requires_grad_())
    params.append(torch.zeros([SIZES[i + 1]], requires_grad=True))


def forward(x):
    h = x
    for i in range(0, len(params), 2):
        h = F.linear(h, params[i], params[i + 1])
        if i + 2 < len(params):
            h = F.relu(h)
    return h


opt = torch.optim.SGD(params, lr=0.05, momentum=0.9) if a.optim == "sgd" else torch.optim.Adam(params, lr=1e-3)

# host-side "dataset" of 16 batches, copied into new tensors every step (torch.tensor copies)
n_data = 16 * BATCH
with torch.no_grad():
    g = torch.Generator().manual_seed(1)
    x = torch.randn([n_data, 784], generator=g)
    y = x.matmul(torch.randn([784, 10], generator=g)).argmax(dim=1)
xs = x.numpy().copy()
ys = y.numpy().astype(np.int64).copy()
del x, y, g


def log(s):
    sys.stderr.write(s + "\n")
    sys.stderr.flush()


log(f"[pytorch] {'-'.join(map(str, SIZES))} MLP, batch {BATCH}, {a.optim}, {steps} steps, {torch.get_num_threads()} torch thread(s), "
    f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, torch {torch.__version__}, python {sys.version.split()[0]}")
log("[pytorch] step     ms/step   rss MiB   loss")

step_ms = 0.0
interval_ms = 0.0
interval_steps = 0
samples = []
for s in range(1, steps + 1):
    b = (s - 1) % 16
    mark = s % every == 0 or s == warmup or s == steps
    t0 = time.perf_counter()
    xb = torch.tensor(xs[b * BATCH:(b + 1) * BATCH])
    yb = torch.tensor(ys[b * BATCH:(b + 1) * BATCH])
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(forward(xb), yb)
    loss.backward()
    opt.step()
    lv = loss.item() if mark else float("nan")
    del xb, yb, loss
    dt = (time.perf_counter() - t0) * 1000
    interval_ms += dt
    interval_steps += 1
    if s > warmup:
        step_ms += dt
    if not mark:
        continue
    gc.collect()
    rss = status_mib("VmRSS")
    if s >= warmup:
        samples.append({"step": s, "rss": rss})
    if s % every == 0 or s == steps:
        log(f"[pytorch] {s:6d}  {interval_ms / interval_steps:8.2f}  {rss:7.1f}   {lv:.4f}")
        interval_ms = 0.0
        interval_steps = 0

print(json.dumps({
    "side": "pytorch", "steps": steps, "warmupStep": warmup, "samples": samples, "peakRss": status_mib("VmHWM"),
    "msPerStep": step_ms / max(1, steps - warmup),
    "info": {"torch": torch.__version__, "python": sys.version.split()[0], "threads": torch.get_num_threads()},
}))
