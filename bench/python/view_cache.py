#!/usr/bin/python3
"""PyTorch side of bench/view-cache.ts: one trial of the sweep, E epochs of KD with random crop
(padding 2) and horizontal flip, the teacher recomputed on every augmented batch as torchdistill and
mdistiller do. Same data (the first N Fashion-MNIST training images in [0, 1]), teacher weights
(kdistill's checkpoint), student (zoo cnn), loss (CE + KL at T=4, alpha 0.9), SGD with momentum,
batch size and threads as the kdistill side. The augmentation is done on the whole batch with
tensor ops (cheaper than torchvision's per-sample transforms, so the baseline is not slowed by it).

  /usr/bin/python3 bench/python/view_cache.py --teacher t.safetensors --samples N --epochs E
        --batch B --threads T --seed S --lr LR
Prints one JSON line: {"seconds": total, "epochSeconds": [...], "steps": n, "loss": last epoch mean}.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from _common import CNN, fashion_mnist_train_uint8, kd_train_step, load_teacher

p = argparse.ArgumentParser()
p.add_argument('--teacher', required=True)
p.add_argument('--samples', type=int, default=5000)
p.add_argument('--epochs', type=int, default=10)
p.add_argument('--batch', type=int, default=128)
p.add_argument('--threads', type=int, default=1)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--lr', type=float, default=0.05)
p.add_argument('--pad', type=int, default=2)
p.add_argument('--temperature', type=float, default=4.0)
p.add_argument('--alpha', type=float, default=0.9)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

teacher = load_teacher(a.teacher)
student = CNN(channels=(8, 16), hidden=64)
opt = torch.optim.SGD(student.parameters(), lr=a.lr, momentum=0.9)

xs, ys = fashion_mnist_train_uint8()
x = torch.from_numpy(xs[:a.samples].copy()).float().div(255)
y = torch.from_numpy(ys[:a.samples].copy())
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=a.batch, shuffle=True)
span = torch.arange(28)


def crop_flip(xb):
    # Per sample: shift by (dy, dx) in [-pad, pad]^2 with zero fill, then mirror with probability 1/2.
    b, pad = xb.shape[0], a.pad
    xp = F.pad(xb, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,))
    dx = torch.randint(0, 2 * pad + 1, (b,))
    rows = (dy[:, None] + span)[:, :, None]
    cols = (dx[:, None] + span)[:, None, :]
    out = xp[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)
    flip = torch.rand(b) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


epoch_seconds, steps, last = [], 0, 0.0
t_all = time.perf_counter()
for epoch in range(a.epochs):
    t0 = time.perf_counter()
    student.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        loss = kd_train_step(teacher, student, opt, crop_flip(xb), yb, a.temperature, a.alpha)  # teacher recomputed here
        total += loss.item()
        count += 1
        steps += 1
    epoch_seconds.append(time.perf_counter() - t0)
    last = total / max(1, count)
print(json.dumps({'seconds': time.perf_counter() - t_all, 'epochSeconds': epoch_seconds, 'steps': steps, 'loss': last,
                  'torch': torch.__version__, 'threads': torch.get_num_threads()}))
