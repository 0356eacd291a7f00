#!/usr/bin/python3
"""PyTorch side of bench/kd-epoch.ts: one epoch of Hinton KD of the MLP 784-32-10 student from
the two-stage CNN teacher on the 60,000 Fashion-MNIST training images, the way torchdistill and
mdistiller run it (teacher recomputed every batch, shuffled mini-batches, SGD with Nesterov).
Prints one JSON line: {"seconds": [per-epoch seconds...]}.
Usage: kd_epoch.py <threads> <epochs>
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn

from _common import fashion_mnist_train_uint8, kd_train_step

threads, epochs = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
x_u8, y_np = fashion_mnist_train_uint8()
x = torch.from_numpy(x_u8.astype(np.float32) / 255)
y = torch.from_numpy(y_np)


def stage(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))


teacher = nn.Sequential(stage(1, 32), stage(32, 64), nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10)).eval()
for p in teacher.parameters():
    p.requires_grad_(False)
student = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
opt = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
T, ALPHA, B = 4.0, 0.9, 128
out = []
for e in range(epochs):
    t0 = time.perf_counter()
    perm = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0], B):
        idx = perm[i:i + B]
        kd_train_step(teacher, student, opt, x[idx], y[idx], T, ALPHA)
    out.append(time.perf_counter() - t0)
print(json.dumps({"seconds": out}))
