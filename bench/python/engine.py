#!/usr/bin/python3
"""PyTorch side of bench/engine.ts: the same models, init, data, loss and optimizer, step for step.

Run by the TypeScript benchmark as a long-lived row worker (one per environment, since
OPENBLAS_NUM_THREADS is read when OpenBLAS loads): _common.serve_rows, each row a model and loss,
{"name": ..., "model": "mlp"|"cnn", "loss": "kd"|"ce"}.
"""
import torch
import torch.nn.functional as F

from _common import serve_rows

BATCH = 128
T = 4.0
ALPHA = 0.9  # weight of the soft (KD) term; the hard term gets 1 - ALPHA (Hinton)
SEED = 0


def uniform(shape, fan_in):
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's nn.Linear/Conv2d bias init (and close to its weight init).
    b = 1.0 / fan_in ** 0.5
    return (torch.rand(shape) * (2 * b) - b).requires_grad_(True)


def build_model(model):
    torch.manual_seed(SEED)
    if model == "mlp":
        params = [
            uniform([256, 784], 784), uniform([256], 784),
            uniform([256, 256], 256), uniform([256], 256),
            uniform([10, 256], 256), uniform([10], 256),
        ]
        x = torch.randn([BATCH, 784])

        def forward(x):
            w1, b1, w2, b2, w3, b3 = params
            h = F.relu(F.linear(x, w1, b1))
            h = F.relu(F.linear(h, w2, b2))
            return F.linear(h, w3, b3)
    elif model == "cnn":
        params = [
            uniform([16, 1, 3, 3], 9), uniform([16], 9),
            uniform([32, 16, 3, 3], 144), uniform([32], 144),
            uniform([10, 32 * 7 * 7], 32 * 7 * 7), uniform([10], 32 * 7 * 7),
        ]
        x = torch.randn([BATCH, 1, 28, 28])

        def forward(x):
            c1, d1, c2, d2, w, b = params
            h = F.max_pool2d(F.relu(F.conv2d(x, c1, d1, 1, 1)), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, c2, d2, 1, 1)), 2)
            return F.linear(h.flatten(1), w, b)
    else:
        raise ValueError("unknown model " + model)
    y = torch.randint(0, 10, [BATCH])
    teacher = torch.randn([BATCH, 10]) * 3
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    return params, x, y, teacher, forward, opt


def make_step(m, loss_kind):
    params, x, y, teacher, forward, opt = m

    def step():
        opt.zero_grad(set_to_none=True)
        s = forward(x)
        ce = F.cross_entropy(s, y)
        if loss_kind == "kd":
            kd = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(teacher / T, 1), reduction="batchmean", log_target=True)
            loss = ce * (1 - ALPHA) + kd * (ALPHA * T * T)
        else:
            loss = ce
        loss.backward()
        opt.step()
        return loss

    return step


def build(row):
    """serve_rows' row builder: the step of one model and loss, its parameter count, no teacher."""
    m = build_model(row["model"])
    return make_step(m, row["loss"]), sum(p.numel() for p in m[0]), None


if __name__ == "__main__":
    serve_rows(build)
