#!/usr/bin/python3
"""PyTorch side of bench/cache.ts: E epochs of KD where the teacher is recomputed for every batch
of every epoch, as torchdistill and mdistiller do. Same data (the first N Fashion-MNIST training
images, scaled to [0, 1]), same teacher weights (read from the safetensors file kdistill wrote),
same student (784-32-10 MLP), loss (CE + KL at T=4, alpha 0.9, T^2-scaled, batchmean), SGD with
momentum, batch size and threads.

  /usr/bin/python3 bench/python/cache.py --teacher t.safetensors --samples N --epochs E
        --batch B --threads T --seed S
Prints one JSON line: {"seconds": total, "epochSeconds": [...], "steps": n, "loss": last epoch mean}.
"""
import argparse
import gzip
import json
import struct
import time

import torch
import torch.nn as nn

from _common import hinton_kd_loss, load_teacher

p = argparse.ArgumentParser()
p.add_argument('--teacher', required=True)
p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--samples', type=int, default=10000)
p.add_argument('--epochs', type=int, default=3)
p.add_argument('--batch', type=int, default=128)
p.add_argument('--threads', type=int, default=1)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--temperature', type=float, default=4.0)
p.add_argument('--alpha', type=float, default=0.9)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

def read_idx(path, count):
    with gzip.open(path, 'rb') as f:
        buf = f.read()
    ndim = buf[3]
    dims = struct.unpack('>' + 'I' * ndim, buf[4:4 + 4 * ndim])
    off = 4 + 4 * ndim
    t = torch.frombuffer(bytearray(buf[off:]), dtype=torch.uint8).reshape(dims)
    return t[:count]


teacher = load_teacher(a.teacher)

student = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)

x = read_idx(f'{a.data}/train-images-idx3-ubyte.gz', a.samples).float().div(255).unsqueeze(1)
y = read_idx(f'{a.data}/train-labels-idx1-ubyte.gz', a.samples).long()
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=a.batch, shuffle=True)

T, alpha = a.temperature, a.alpha
epoch_seconds, steps, last = [], 0, 0.0
t_all = time.perf_counter()
for epoch in range(a.epochs):
    t0 = time.perf_counter()
    student.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        with torch.no_grad():
            zt = teacher(xb)  # recomputed every batch of every epoch
        zs = student(xb)
        loss = hinton_kd_loss(zs, zt, yb, T, alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        count += 1
        steps += 1
    epoch_seconds.append(time.perf_counter() - t0)
    last = total / max(1, count)
print(json.dumps({'seconds': time.perf_counter() - t_all, 'epochSeconds': epoch_seconds, 'steps': steps, 'loss': last,
                  'torch': torch.__version__, 'threads': torch.get_num_threads()}))
