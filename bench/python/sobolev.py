#!/usr/bin/python3
"""PyTorch side of bench/sobolev.ts: the same networks, data, loss and Sobolev estimator.

Protocol as bench/python/engine.py: {"hello": ...} once; then per line a request
{"mode": "kd"|"sobolev1"|"sobolev2", "threads": n, "warmup": w, "steps": s}, answered with
{"msPerStep": ..., "loss": ...}; {"quit": true} or EOF ends it.

The estimator (src/losses/sobolev.ts): per sample, v (input) and u (output) uniform on unit
spheres; g = J^T u by one backward (create_graph), s = sum(g * v); one more backward of s with
respect to (u, x) gives J v and H(u) v; order 1 = mean ||J_s v - J_t v||^2, order 2 =
mean (v^T H_s v - v^T H_t v)^2, on log-softmax outputs.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

BATCH = 128
T = 4.0
ALPHA = 0.9


def uniform(shape, fan_in, grad):
    b = 1.0 / fan_in ** 0.5
    return (torch.rand(shape) * (2 * b) - b).requires_grad_(grad)


torch.manual_seed(0)
tp = [uniform([256, 784], 784, False), uniform([256], 784, False), uniform([256, 256], 256, False), uniform([256], 256, False),
      uniform([10, 256], 256, False), uniform([10], 256, False)]
sp = [uniform([128, 784], 784, True), uniform([128], 784, True), uniform([10, 128], 128, True), uniform([10], 128, True)]
x0 = torch.randn(BATCH, 784)
y = torch.randint(0, 10, (BATCH,))
opt = torch.optim.SGD(sp, lr=0.01, momentum=0.9)
gen = torch.Generator().manual_seed(0)


def teacher(x):
    return F.linear(torch.tanh(F.linear(torch.tanh(F.linear(x, tp[0], tp[1])), tp[2], tp[3])), tp[4], tp[5])


def student(x):
    return F.linear(torch.tanh(F.linear(x, sp[0], sp[1])), sp[2], sp[3])


def unit(shape):
    return F.normalize(torch.randn(shape, generator=gen), dim=1)


def derivs(out, x, v, u0, order2, create_graph):
    u = u0.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(out, x, u, create_graph=True, retain_graph=True)
    s = (g * v).sum()
    gs = torch.autograd.grad(s, [u, x] if order2 else [u], create_graph=create_graph, retain_graph=True, allow_unused=True)
    jv = gs[0]
    vhv = (gs[1] * v).sum(1) if order2 else None
    if not create_graph:
        jv = jv.detach()
        vhv = vhv.detach() if vhv is not None else None
    return jv, vhv


def kd_loss(zs, zt):
    kl = F.kl_div(F.log_softmax(zs / T, 1), F.log_softmax(zt / T, 1), reduction='batchmean', log_target=True) * T * T
    return F.cross_entropy(zs, y) * (1 - ALPHA) + kl * ALPHA


def step(mode):
    opt.zero_grad(set_to_none=True)
    x = x0.detach().requires_grad_(mode != 'kd')
    zs = student(x)
    if mode == 'kd':
        with torch.no_grad():
            zt = teacher(x)
        loss = kd_loss(zs, zt)
    else:
        xt = x.detach().requires_grad_(True)
        zt = teacher(xt)
        loss = kd_loss(zs, zt.detach())
        v, u = unit((BATCH, 784)), unit((BATCH, 10))
        o2 = mode == 'sobolev2'
        jt, ht = derivs(F.log_softmax(zt, 1), xt, v, u, o2, False)
        js, hs = derivs(F.log_softmax(zs, 1), x, v, u, o2, True)
        loss = loss + ((js - jt) ** 2).sum(1).mean()
        if o2:
            loss = loss + ((hs - ht) ** 2).mean()
    loss.backward(inputs=sp)
    opt.step()
    return loss.item()


def main():
    print(json.dumps({'hello': {'torch': torch.__version__, 'defaultThreads': torch.get_num_threads(),
                                'OPENBLAS_NUM_THREADS': os.environ.get('OPENBLAS_NUM_THREADS')}}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        if req.get('quit'):
            break
        torch.set_num_threads(int(req['threads']))
        for _ in range(int(req['warmup'])):
            step(req['mode'])
        t0 = time.perf_counter()
        loss = 0.0
        for _ in range(int(req['steps'])):
            loss = step(req['mode'])
        ms = (time.perf_counter() - t0) * 1000.0 / int(req['steps'])
        print(json.dumps({'msPerStep': ms, 'loss': loss}), flush=True)


if __name__ == '__main__':
    main()
