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
import torch
import torch.nn.functional as F

from _common import CNN, fashion_mnist_train_loader, kd_bench_args, kd_train_step, load_teacher, time_kd_epochs

a = kd_bench_args(samples=5000, epochs=10, add=lambda p: p.add_argument('--pad', type=int, default=2))
teacher = load_teacher(a.teacher)
student = CNN(channels=(8, 16), hidden=64)
opt = torch.optim.SGD(student.parameters(), lr=a.lr, momentum=0.9)

loader = fashion_mnist_train_loader(a.samples, a.batch)
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


# The teacher is recomputed on every augmented batch (inside kd_train_step).
time_kd_epochs(student, loader, a.epochs, lambda xb, yb: kd_train_step(teacher, student, opt, crop_flip(xb), yb, a.temperature, a.alpha))
