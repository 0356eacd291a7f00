#!/usr/bin/python3
"""PyTorch reference for bench/memory-train.ts: the same KD loop as kdistill's trainer runs there,
written as a bare loop (no checkpoints, logging or NaN checks): a fixed random MLP teacher
784-128-10 (eval, no grad) and an MLP student 784-32-10 on a class-stratified 6,400-image subset
of Fashion-MNIST train (pixels / 255), shuffled mini-batches of 64, Hinton KD (T = 4,
alpha = 0.9: (1 - alpha)·CE + alpha·T²·KL), Adam lr 1e-3 with a per-epoch cosine schedule,
1 torch thread. RSS (VmRSS from /proc/self/status) is sampled after gc.collect() at step 0 and at
the end of every 10th epoch and the last one, the same marks as the kdistill side. Progress goes
to stderr; one JSON line to stdout:
  {"side": "pytorch", "steps", "warmupStep", "samples": [{"step", "rss"}], "peakRss", "msPerStep", "info"}
Usage: memory_train.py [--steps 20000] [--batch 64] [--samples 6400]
"""
import argparse
import gc
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

from _common import fashion_mnist_train_uint8, kd_train_step, status_mib

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=20000)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--samples", type=int, default=6400)
a = ap.parse_args()
B = a.batch
per_epoch = math.ceil(a.samples / B)
epochs = max(2, round(a.steps / per_epoch))
T, ALPHA = 4.0, 0.9


def log(s):
    sys.stderr.write(s + "\n")
    sys.stderr.flush()


samples = []


def sample(step):
    gc.collect()
    rss = status_mib("VmRSS")
    samples.append({"step": step, "rss": rss})
    log(f"[pytorch]  step {step:<7d} rss {rss:7.1f} MiB")


torch.set_num_threads(1)
torch.manual_seed(0)
log(f"[pytorch] KD loop: {epochs} epochs x {per_epoch} steps, batch {B}, torch {torch.__version__}, python {sys.version.split()[0]}, "
    f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}")
x_all, y_all = fashion_mnist_train_uint8()
rng = np.random.default_rng(1)
per_class = a.samples // 10
idx = np.concatenate([rng.permutation(np.flatnonzero(y_all == c))[:per_class] for c in range(10)])
x = torch.from_numpy(x_all[idx].astype(np.float32) / 255)
y = torch.from_numpy(y_all[idx].copy())
del x_all, y_all, idx

mlp = lambda h: nn.Sequential(nn.Flatten(), nn.Linear(784, h), nn.ReLU(), nn.Linear(h, 10))
teacher = mlp(128).eval()
for p in teacher.parameters():
    p.requires_grad_(False)
student = mlp(32)
opt = torch.optim.Adam(student.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)

sample(0)
t0 = time.perf_counter()
step = 0
n = x.shape[0]
for e in range(epochs):
    student.train()
    perm = torch.randperm(n)
    for i in range(0, n, B):
        bi = perm[i:i + B]
        kd_train_step(teacher, student, opt, x[bi], y[bi], T, ALPHA)
        step += 1
    sched.step()
    if (e + 1) % 10 == 0 or e == epochs - 1:
        sample(step)
ms = (time.perf_counter() - t0) * 1000

print(json.dumps({
    "side": "pytorch", "steps": step, "warmupStep": 0, "samples": samples, "peakRss": status_mib("VmHWM"),
    "msPerStep": ms / step,
    "info": {"torch": torch.__version__, "python": sys.version.split()[0], "threads": torch.get_num_threads(), "epochs": epochs},
}))
