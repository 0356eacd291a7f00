"""Shared by the PyTorch sides of the benchmarks (each script is run as
`/usr/bin/python3 bench/python/<name>.py`, so this folder is on sys.path)."""
import argparse
import gzip
import json
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION_MNIST = "/usr/share/datasets/fashion-mnist/"


def fashion_mnist_train_uint8():
    """The 60,000 training images [N, 1, 28, 28] uint8 and labels int64, as numpy arrays."""
    with gzip.open(FASHION_MNIST + "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(FASHION_MNIST + "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def fashion_mnist_train_loader(samples, batch):
    """The first `samples` training images in [0, 1] with their labels, shuffled into batches
    (the order follows torch's seed)."""
    xs, ys = fashion_mnist_train_uint8()
    x = torch.from_numpy(xs[:samples].copy()).float().div(255)
    y = torch.from_numpy(ys[:samples].copy())
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True)


def hinton_kd_loss(student_logits, teacher_logits, labels, T, alpha):
    """(1 - alpha)·CE + alpha·T²·KL(p_T(teacher) ‖ p_T(student)), batchmean: kdistill's `kd`."""
    kd = F.kl_div(F.log_softmax(student_logits / T, 1), F.log_softmax(teacher_logits / T, 1),
                  reduction="batchmean", log_target=True) * T * T
    return (1 - alpha) * F.cross_entropy(student_logits, labels) + alpha * kd


def kd_train_step(teacher, student, opt, xb, yb, T, alpha):
    """One Hinton KD step on a batch: the teacher without gradients, the student updated; returns the loss."""
    with torch.no_grad():
        tl = teacher(xb)
    loss = hinton_kd_loss(student(xb), tl, yb, T, alpha)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def kd_bench_args(samples, epochs, add=None):
    """The command line of the KD timing scripts (cache.py, view_cache.py): the options their
    kdistill orchestrators pass to both sides alike, `add(parser)` for a script's own; parses
    sys.argv and sets torch's threads and seed from it."""
    p = argparse.ArgumentParser()
    p.add_argument('--teacher', required=True)
    p.add_argument('--samples', type=int, default=samples)
    p.add_argument('--epochs', type=int, default=epochs)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--lr', type=float, default=0.05)
    p.add_argument('--temperature', type=float, default=4.0)
    p.add_argument('--alpha', type=float, default=0.9)
    if add:
        add(p)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    return a


def time_kd_epochs(student, loader, epochs, step):
    """Trains `epochs` epochs calling `step(xb, yb)` (one optimizer step, returns the loss) on each
    batch and prints the one JSON line the orchestrator reads: total and per-epoch seconds, steps,
    the last epoch's mean loss."""
    epoch_seconds, steps, last = [], 0, 0.0
    t_all = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        student.train()
        total, count = 0.0, 0
        for xb, yb in loader:
            total += step(xb, yb).item()
            count += 1
            steps += 1
        epoch_seconds.append(time.perf_counter() - t0)
        last = total / max(1, count)
    print(json.dumps({'seconds': time.perf_counter() - t_all, 'epochSeconds': epoch_seconds, 'steps': steps, 'loss': last,
                      'torch': torch.__version__, 'threads': torch.get_num_threads()}))


def status_mib(key):
    """A /proc/self/status size field (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


SAFETENSORS_DTYPES = {'F32': torch.float32, 'I64': torch.int64, 'F16': torch.float16, 'I32': torch.int32}


def read_safetensors(path):
    # The format is 8 bytes of header length, a JSON header, then raw little-endian tensors.
    with open(path, 'rb') as f:
        buf = f.read()
    n = struct.unpack('<Q', buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        b, e = v['data_offsets']
        raw = bytearray(buf[8 + n + b:8 + n + e])
        out[k] = torch.frombuffer(raw, dtype=SAFETENSORS_DTYPES[v['dtype']]).reshape(v['shape']) if raw else torch.zeros(v['shape'], dtype=SAFETENSORS_DTYPES[v['dtype']])
    return out


class CNN(nn.Module):
    # kdistill's zoo 'cnn' (src/nn/zoo/cnn.ts) with the same module names, so the state dict loads.
    def __init__(self, channels=(32, 64), hidden=256, classes=10):
        super().__init__()
        c, h = 1, 28
        for i, out in enumerate(channels):
            setattr(self, f'stage{i + 1}', nn.Sequential(nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)))
            c, h = out, h // 2
        self.n = len(channels)
        self.fc1 = nn.Sequential(nn.Linear(c * h * h, hidden), nn.ReLU(), nn.Dropout(0.0))
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        for i in range(self.n):
            x = getattr(self, f'stage{i + 1}')(x)
        return self.fc2(self.fc1(x.flatten(1)))


def load_teacher(path, **cnn):
    """A zoo-cnn teacher from kdistill's checkpoint, frozen and in eval mode."""
    teacher = CNN(**cnn)
    teacher.load_state_dict(read_safetensors(path))
    teacher.eval()
    for q in teacher.parameters():
        q.requires_grad_(False)
    return teacher


def serve_rows(build):
    """A long-lived row worker (bench/_rows.ts). Protocol, one JSON object per line:
      stdout <- {"hello": {...}}
      stdin  -> {"row": <row spec of the benchmark>, "threads": n, "warmup": w, "steps": s[, "profile": k]}
      stdout <- {"ms": [...], "msPerStep": mean, "cpuMsPerStep": process CPU time, "faultsPerStep": minor faults,
                 "loss": last loss, "params": student parameters, "teacherParams": teacher parameters or null
                 [, "profile": top ops by self CPU time, "profileOpMs": their summed self time, "profileWallMs"]}
    build(row) -> (step, params, teacher_params), step() returning the loss tensor; each row is built once."""
    built = {}
    print(json.dumps({"hello": {"torch": torch.__version__, "defaultThreads": torch.get_num_threads(),
                                "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"), "pid": os.getpid()}}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("quit"):
            break
        torch.set_num_threads(int(req["threads"]))
        row = req["row"]
        if row["name"] not in built:
            built[row["name"]] = build(row)
        step, params, tparams = built[row["name"]]
        for _ in range(int(req["warmup"])):
            step()
        times = []
        loss = float("nan")
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(int(req["steps"])):
            t0 = time.perf_counter()
            loss = step().item()
            times.append((time.perf_counter() - t0) * 1000.0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        n = int(req["steps"])
        reply = {"ms": times, "msPerStep": sum(times) / len(times), "loss": loss, "params": params, "teacherParams": tparams,
                 "cpuMsPerStep": (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000.0 / n,
                 "faultsPerStep": (r1.ru_minflt - r0.ru_minflt) / n}
        if req.get("profile"):
            t0 = time.perf_counter()
            with torch.autograd.profiler.profile() as prof:
                for _ in range(int(req["profile"])):
                    step().item()
            reply["profileWallMs"] = (time.perf_counter() - t0) * 1000.0
            averages = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
            reply["profileOpMs"] = sum(e.self_cpu_time_total for e in averages) / 1000.0
            reply["profile"] = [{"name": e.key, "calls": e.count, "selfMs": e.self_cpu_time_total / 1000.0,
                                 "totalMs": e.cpu_time_total / 1000.0} for e in averages[:40]]
        print(json.dumps(reply), flush=True)
