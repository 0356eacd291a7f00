#!/usr/bin/python3
"""PyTorch side of bench/representation.ts: one training step of KD, CRD (memory bank) and ReviewKD
on a ResNet-20 teacher -> ResNet-8 student pair, written from the authors' code:
  CRD       RepDistiller (crd/criterion.py CRDLoss: Embed = linear + Normalize on the penultimate
            features; crd/memory.py ContrastMemory.forward with given contrast indices, the NCE
            ContrastLoss) - the memory and loss are the golden fixture's reference
            (scripts/fixtures/crd.py), imported so that the bench times the code the golden test
            checks kdistill against. Loss CE + 0.8 * CRD, as RepDistiller's -r 1 -a 0 -b 0.8 (its
            loop also computes the KD term it weights by 0; left out here, as kdistill skips it).
            The negatives are drawn by torch.randint in the step, as kdistill draws them (the
            memory's AliasMethod over uniform weights is the same distribution, at higher cost).
            Always the authors' gather of the bank's rows: a row's `scoring` is kdistill's only.
  ReviewKD  mdistiller (distillers/ReviewKD.py: ABF and hcl_loss, again imported from the golden
            fixture scripts/fixtures/reviewkd.py), levels = the three stage outputs and the pooled
            embedding, CE weight 1, weight * min(epoch / 20, 1) at epoch 1.
  KD        (1 - 0.9) CE + 0.9 T^2 KL at T = 4 (_common.hinton_kd_loss).
Models from zoo.py (the same networks as kdistill's zoo; the orchestrator checks parameter counts,
which include the embedding heads and the ABFs). A long-lived row worker (_common.serve_rows).
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from _common import hinton_kd_loss, serve_rows
from zoo import build_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts', 'fixtures'))
from crd import Memory, contrast_loss  # noqa: E402
from reviewkd import ABF, fuse_levels, hcl_loss  # noqa: E402


def with_features(model, x):
    """A zoo ResNet's logits, its stage outputs [layer1, layer2, layer3] and pooled embedding
    (RepDistiller's / mdistiller's is_feat forward)."""
    h = F.relu(model.bn1(model.conv1(x)))
    f1 = model.layer1(h)
    f2 = model.layer2(f1)
    f3 = model.layer3(f2)
    pooled = torch.flatten(F.adaptive_avg_pool2d(f3, 1), 1)
    return model.fc(pooled), [f1, f2, f3], pooled


class Embed(nn.Module):
    """RepDistiller's Embed: linear, then Normalize (x / ||x||_2)."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        x = self.linear(x.view(x.shape[0], -1))
        return x.div(x.pow(2).sum(1, keepdim=True).pow(1. / 2))


def build(row):
    torch.manual_seed(0)
    shape, b, n_data = row["input"], row["batch"], row["datasetSize"]
    student = build_model({"arch": row["student"]}, shape).train()
    teacher = build_model({"arch": row["teacher"]}, shape).eval()
    for q in teacher.parameters():
        q.requires_grad_(False)
    x = torch.randn([b] + shape)
    y = torch.randint(0, 10, [b])
    m = row["method"]
    p = m["params"]
    extra = nn.ModuleList()
    with torch.no_grad():
        _, tf, tpooled = with_features(teacher, x[:2])
        _, sf, spooled = with_features(student, x[:2])

    if m["name"] == "kd":
        def loss_fn(index):
            with torch.no_grad():
                tl = teacher(x)
            return hinton_kd_loss(student(x), tl, y, p["temperature"], p["alpha"])
    elif m["name"] == "crd":
        embed_s, embed_t = Embed(spooled.shape[1], p["featDim"]), Embed(tpooled.shape[1], p["featDim"])
        extra.extend([embed_s, embed_t])
        d, K = p["featDim"], p["numNegatives"]
        stdv = 1. / math.sqrt(d / 3)  # ContrastMemory's initialisation
        memory = Memory(torch.rand(n_data, d) * 2 * stdv - stdv, torch.rand(n_data, d) * 2 * stdv - stdv, p["nceTemperature"], p["momentum"])

        def loss_fn(index):
            logit_s, _, f_s = with_features(student, x)
            with torch.no_grad():
                _, _, f_t = with_features(teacher, x)
            contrast_idx = torch.cat([index.unsqueeze(1), torch.randint(0, n_data, (b, K))], 1)
            out_s, out_t = memory.forward(embed_s(f_s), embed_t(f_t), index, contrast_idx)
            crd = contrast_loss(out_s, n_data) + contrast_loss(out_t, n_data)
            return F.cross_entropy(logit_s, y) + p["beta"] * crd.squeeze()
    elif m["name"] == "reviewkd":
        s_shapes = [f.shape for f in sf] + [spooled.shape + (1, 1)]
        t_shapes = [f.shape for f in tf] + [tpooled.shape + (1, 1)]
        in_ch, out_ch = [s[1] for s in s_shapes], [t[1] for t in t_shapes]
        mid = min(512, in_ch[-1])
        abfs = nn.ModuleList([ABF(in_ch[i], mid, out_ch[i], i < len(in_ch) - 1) for i in range(len(in_ch))])
        extra.append(abfs)
        ab = abfs[::-1]
        shapes = [s[2] for s in s_shapes][::-1]       # mdistiller's SHAPES, deepest first
        out_shapes = [t[2] for t in t_shapes][::-1]   # its OUT_SHAPES
        ramp = min(1 / p["warmupEpochs"], 1.0)        # mdistiller's epoch 1 = kdistill's epoch 0

        def loss_fn(index):
            logit_s, fs, pooled = with_features(student, x)
            with torch.no_grad():
                _, ft, tpool = with_features(teacher, x)
            results = fuse_levels(ab, (fs + [pooled.unsqueeze(-1).unsqueeze(-1)])[::-1], shapes, out_shapes)
            teacher_feats = ft + [tpool.unsqueeze(-1).unsqueeze(-1)]
            return p["ceWeight"] * F.cross_entropy(logit_s, y) + p["weight"] * ramp * hcl_loss(results, teacher_feats)
    else:
        raise ValueError("unknown method " + m["name"])

    o = row["optim"]
    opt = torch.optim.SGD(list(student.parameters()) + list(extra.parameters()), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weightDecay"])
    order = {"perm": torch.empty(0, dtype=torch.long), "at": n_data}

    def step():
        # the loader's indices: consecutive slices of a fresh permutation per epoch
        if order["at"] + b > n_data:
            order["perm"], order["at"] = torch.randperm(n_data), 0
        index = order["perm"][order["at"]:order["at"] + b]
        order["at"] += b
        loss = loss_fn(index)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    count = lambda mods: sum(q.numel() for mod in mods for q in mod.parameters())
    return step, count([student, extra]), count([teacher])


if __name__ == "__main__":
    serve_rows(build)
