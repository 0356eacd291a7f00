"""Shared by the PyTorch sides of the benchmarks (each script is run as
`/usr/bin/python3 bench/python/<name>.py`, so this folder is on sys.path)."""
import gzip

import numpy as np
import torch
import torch.nn.functional as F

FASHION_MNIST = "/usr/share/datasets/fashion-mnist/"


def fashion_mnist_train_uint8():
    """The 60,000 training images [N, 1, 28, 28] uint8 and labels int64, as numpy arrays."""
    with gzip.open(FASHION_MNIST + "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(FASHION_MNIST + "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


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


def status_mib(key):
    """A /proc/self/status size field (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")
