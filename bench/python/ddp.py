#!/usr/bin/python3
"""PyTorch side of bench/distributed.ts: the same model (--model mlp|cnn), loss, optimizer and
global batch, one rank.

With WORLD_SIZE > 1 the model is wrapped in DistributedDataParallel over Gloo (env:// rendezvous:
RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), each rank on its half of every global batch.
Rank 0 prints {"samplesPerSec": ...} after the timed steps.
  ddp.py --steps 200 --warmup 20 --threads 1 --model mlp
"""
import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

GLOBAL_BATCH = 128
T = 4.0
ALPHA = 0.9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    a = ap.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.model == "cnn":
        # kdistill's zoo CNN {channels: [8, 16], hidden: 32} (src/nn/zoo/cnn.ts), dropout 0
        model = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))
        shape = (1, 28, 28)
    else:
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
        shape = (784,)
    if world > 1:
        dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world)
        model = nn.parallel.DistributedDataParallel(model)
    local = GLOBAL_BATCH // world
    torch.manual_seed(1 + rank)
    x = torch.randn(local, *shape)
    y = torch.randint(0, 10, (local,))
    teacher = torch.randn(local, 10) * 3
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        s = model(x)
        ce = F.cross_entropy(s, y)
        kd = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(teacher / T, 1), reduction="batchmean", log_target=True)
        (ce * (1 - ALPHA) + kd * (ALPHA * T * T)).backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    if world > 1:
        dist.barrier()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    if world > 1:
        dist.barrier()
    sec = time.perf_counter() - t0
    if rank == 0:
        print(json.dumps({"samplesPerSec": a.steps * GLOBAL_BATCH / sec}), flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
