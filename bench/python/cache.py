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
import torch
import torch.nn as nn

from _common import fashion_mnist_train_loader, kd_bench_args, kd_train_step, load_teacher, time_kd_epochs

a = kd_bench_args(samples=10000, epochs=3)
teacher = load_teacher(a.teacher)
student = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
opt = torch.optim.SGD(student.parameters(), lr=a.lr, momentum=0.9)

loader = fashion_mnist_train_loader(a.samples, a.batch)

# The teacher is recomputed for every batch of every epoch (inside kd_train_step).
time_kd_epochs(student, loader, a.epochs, lambda xb, yb: kd_train_step(teacher, student, opt, xb, yb, a.temperature, a.alpha))
