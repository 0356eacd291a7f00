#!/usr/bin/python3
"""PyTorch side of bench/zoo.ts: training steps of the zoo's CIFAR ResNets, WRNs and the Hinton
MNIST MLPs, built as mdistiller / kdistill build them (same module structure, so the same
parameter count, which the orchestrator checks), same loss, optimizer and batch shapes.
A long-lived row worker (_common.serve_rows; rows as in bench/zoo.ts).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from _common import hinton_kd_loss, serve_rows


class BasicBlock(nn.Module):
    """mdistiller's CIFAR ResNet block (kdistill's src/nn/zoo/resnet.ts)."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, depth, in_ch, classes=10):
        super().__init__()
        n, filters = (depth - 2) // 6, [16, 16, 32, 64]
        self.inplanes = filters[0]
        self.conv1 = nn.Conv2d(in_ch, filters[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters[0])
        self.layer1 = self._layer(filters[1], n, 1)
        self.layer2 = self._layer(filters[2], n, 2)
        self.layer3 = self._layer(filters[3], n, 2)
        self.fc = nn.Linear(filters[3], classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _layer(self, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


class WideBlock(nn.Module):
    """mdistiller's pre-activation WRN block (kdistill's src/nn/zoo/wrn.ts), no dropout."""

    def __init__(self, inp, out, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.shortcut = None if inp == out else nn.Conv2d(inp, out, 1, stride, 0, bias=False)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return (x if self.shortcut is None else self.shortcut(a)) + out


class WRN(nn.Module):
    def __init__(self, depth, widen, in_ch, classes=10):
        super().__init__()
        n, ch = (depth - 4) // 6, [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_ch, ch[0], 3, 1, 1, bias=False)
        self.block1 = nn.Sequential(*[WideBlock(ch[0] if i == 0 else ch[1], ch[1], 1) for i in range(n)])
        self.block2 = nn.Sequential(*[WideBlock(ch[1] if i == 0 else ch[2], ch[2], 2 if i == 0 else 1) for i in range(n)])
        self.block3 = nn.Sequential(*[WideBlock(ch[2] if i == 0 else ch[3], ch[3], 2 if i == 0 else 1) for i in range(n)])
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.fc = nn.Linear(ch[3], classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, (2 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        h = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.bn1(h)), 1), 1))


def mlp(features, hidden, dropout, input_dropout, classes=10):
    """kdistill's MLP: flatten, input dropout, [linear, relu, dropout] per hidden width, linear."""
    layers = [nn.Flatten()] + ([nn.Dropout(input_dropout)] if input_dropout > 0 else [])
    for w in hidden:
        layers += [nn.Linear(features, w), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
        features = w
    return nn.Sequential(*layers, nn.Linear(features, classes))


def build_model(spec, input_shape):
    arch = spec["arch"]
    if arch.startswith("resnet"):
        return ResNet(int(arch[6:]), input_shape[0])
    if arch.startswith("wrn_"):
        _, d, w = arch.split("_")
        return WRN(int(d), int(w), input_shape[0])
    if arch == "mlp":
        n = input_shape[0] * input_shape[1] * input_shape[2]
        return mlp(n, spec["hidden"], spec.get("dropout", 0), spec.get("inputDropout", 0))
    raise ValueError("unknown arch " + arch)


def build(row):
    torch.manual_seed(0)
    shape = row["input"]
    student = build_model(row["student"], shape).train()
    teacher = build_model(row["teacher"], shape).eval() if row.get("teacher") else None
    o = row["optim"]
    opt = torch.optim.SGD(student.parameters(), lr=o["lr"], momentum=o["momentum"], nesterov=o.get("nesterov", False),
                          weight_decay=o.get("weightDecay", 0))
    constrained = [m.weight for m in student.modules() if isinstance(m, (nn.Linear, nn.Conv2d))] if o.get("maxNorm") else []
    x = torch.randn([row["batch"]] + shape)
    y = torch.randint(0, 10, [row["batch"]])
    fixed = torch.randn([row["batch"], 10]) * 3  # the teacher's logits when they come from a cache
    loss = row["loss"]

    def step():
        if teacher is not None:
            with torch.no_grad():
                tl = teacher(x)
        else:
            tl = fixed
        s = student(x)
        l = hinton_kd_loss(s, tl, y, loss["T"], loss["alpha"]) if loss["kind"] == "kd" else F.cross_entropy(s, y)
        opt.zero_grad(set_to_none=True)
        l.backward()
        opt.step()
        if constrained:
            with torch.no_grad():
                for w in constrained:
                    w.renorm_(2, 0, o["maxNorm"])
        return l

    count = lambda m: sum(p.numel() for p in m.parameters()) if m is not None else None
    return step, count(student), count(teacher)


if __name__ == "__main__":
    serve_rows(build)
