#!/usr/bin/python3
"""PyTorch side of bench/transformer.ts: training steps of the same BERT-style encoder (post-LN,
erf GELU, LayerNorm eps 1e-12, padding mask from id 0, tanh pooler on [CLS], classifier), AdamW,
cross-entropy, on the same random id batches (shape and padding pattern). Prints one JSON line:
{"ms": [per-step milliseconds after warm-up]}.
Usage: transformer.py <threads> <steps> <batch> <length> <vocab> <layers> <hidden> <heads> <ffn>
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads, steps, B, L, V, NL, H, NH, FF = (int(a) for a in sys.argv[1:10])
torch.set_num_threads(threads)
torch.manual_seed(0)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value, self.output = (nn.Linear(H, H) for _ in range(4))
        self.drop = nn.Dropout(0.1)

    def forward(self, x, mask):
        b, l, _ = x.shape
        split = lambda t: t.view(b, l, NH, H // NH).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        raw = q @ k.transpose(-2, -1) * (1 / math.sqrt(H // NH))
        blocked = ~mask
        raw.masked_fill(blocked, 0.0)  # the exposed TinyBERT scores map, as kdistill computes it
        probs = raw.masked_fill(blocked, float('-inf')).softmax(-1)
        return self.output((self.drop(probs) @ v).transpose(1, 2).reshape(b, l, H))


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = Attention()
        self.attnNorm = nn.LayerNorm(H, eps=1e-12)
        self.intermediate, self.output = nn.Linear(H, FF), nn.Linear(FF, H)
        self.outNorm = nn.LayerNorm(H, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, mask):
        h = self.attnNorm(x + self.drop(self.attention(x, mask)))
        return self.outNorm(h + self.drop(self.output(F.gelu(self.intermediate(h)))))


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.word, self.position = nn.Embedding(V, H, padding_idx=0), nn.Embedding(L, H)
        self.norm, self.drop = nn.LayerNorm(H, eps=1e-12), nn.Dropout(0.1)
        self.layers = nn.ModuleList(Layer() for _ in range(NL))
        self.pooler, self.classifier = nn.Linear(H, H), nn.Linear(H, 2)

    def forward(self, ids):
        mask = (ids != 0)[:, None, None, :]
        h = self.drop(self.norm(self.word(ids) + self.position(torch.arange(ids.shape[1]))))
        for layer in self.layers:
            h = layer(h, mask)
        return self.classifier(self.drop(torch.tanh(self.pooler(h[:, 0]))))


model = Bert().train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
g = torch.Generator().manual_seed(1)
ids = torch.randint(5, V, (B, L), generator=g)
lengths = torch.randint(L // 4, L + 1, (B,), generator=g)
ids[torch.arange(L)[None, :] >= lengths[:, None]] = 0
y = torch.randint(0, 2, (B,), generator=g)
ms = []
for s in range(steps + 3):
    t0 = time.perf_counter()
    loss = F.cross_entropy(model(ids), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    loss.item()
    if s >= 3:
        ms.append((time.perf_counter() - t0) * 1000)
print(json.dumps({'ms': ms}))
