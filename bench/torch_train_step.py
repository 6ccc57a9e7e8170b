#!/usr/bin/python3
"""The PyTorch side of bench/train_step_vs_torch.sh: one ResNet-20 training step (forward, softmax
cross-entropy, backward, SGD with Nesterov momentum and weight decay), identical in shape and
arithmetic to pimqat's, timed on random data. FP32 or digital QAT exactly as DESIGN.md 2.1.

Prints one line: `images_per_second <value>`.
Usage: torch_train_step.py --channels 1 --size 28 --weight-bits 0 --act-bits 0 --threads 2
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class WeightQuant(torch.autograd.Function):
    """DESIGN.md 2.1: u = tanh(w)/max|tanh(w)|, W = clamp(floor((u+1)/2 2^b), 0, 2^b-1) - 2^(b-1),
    w_q = W / (std(W) sqrt(fan_out)); straight-through rounding, exact tanh-normalization derivative."""

    @staticmethod
    def forward(ctx, w, bits, fan_out):
        with torch.enable_grad():
            wd = w.detach().requires_grad_(True)
            t = torch.tanh(wd)
            u = t / t.abs().max()
        levels = 2 ** bits
        m = torch.clamp(torch.floor((u.detach() + 1) / 2 * levels), 0, levels - 1)
        integers = m - levels // 2
        scale = 1.0 / (integers.std() * math.sqrt(fan_out))
        ctx.save_for_backward(wd, u)
        ctx.factor = float(scale) * levels / 2
        return integers * scale

    @staticmethod
    def backward(ctx, grad):
        wd, u = ctx.saved_tensors
        (g,) = torch.autograd.grad(u, wd, grad * ctx.factor)
        return g, None, None


class ActQuant(torch.autograd.Function):
    """PACT with the calibrated alpha gradient (DESIGN.md 2.1)."""

    @staticmethod
    def forward(ctx, x, alpha, bits):
        levels = 2 ** bits - 1
        a = float(alpha)
        xq = torch.round(torch.clamp(x, 0, a) / a * levels) * (a / levels)
        ctx.save_for_backward(x, xq, alpha)
        return xq

    @staticmethod
    def backward(ctx, grad):
        x, xq, alpha = ctx.saved_tensors
        a = alpha
        pass_mask = (x > 0) & (x < a)
        dalpha = torch.where(x < a, (xq - x) / a, torch.ones_like(x))
        return grad * pass_mask, (grad * dalpha).sum().reshape(alpha.shape), None


class QConv(nn.Conv2d):
    def __init__(self, cin, cout, k, stride, pad, wbits, abits):
        super().__init__(cin, cout, k, stride, pad, bias=False)
        self.wbits, self.abits = wbits, abits
        self.alpha = nn.Parameter(torch.tensor(8.0)) if abits else None

    def forward(self, x):
        if self.abits:
            x = ActQuant.apply(x, self.alpha, self.abits)
        w = self.weight
        if self.wbits:
            w = WeightQuant.apply(w, self.wbits, w.shape[0] * w.shape[2] * w.shape[3])
        return F.conv2d(x, w, None, self.stride, self.padding)


class QLinear(nn.Linear):
    def __init__(self, cin, cout, wbits, abits):
        super().__init__(cin, cout)
        self.wbits, self.abits = wbits, abits
        self.alpha = nn.Parameter(torch.tensor(8.0)) if abits else None

    def forward(self, x):
        if self.abits:
            x = ActQuant.apply(x, self.alpha, self.abits)
        w = self.weight
        if self.wbits:
            w = WeightQuant.apply(w, self.wbits, w.shape[0])
        return F.linear(x, w, self.bias)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, wb, ab):
        super().__init__()
        self.conv1 = QConv(cin, cout, 3, stride, 1, wb, ab)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = QConv(cout, cout, 3, 1, 1, wb, ab)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(QConv(cin, cout, 1, stride, 0, wb, ab), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet(nn.Module):
    def __init__(self, depth, channels, classes, wb, ab, first_last_bits=8):
        super().__init__()
        n = (depth - 2) // 6
        fl = first_last_bits if wb else 0
        self.conv1 = QConv(channels, 16, 3, 1, 1, fl, 0)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for stage, cout in enumerate([16, 32, 64]):
            for i in range(n):
                layers.append(Block(cin, cout, 2 if (stage > 0 and i == 0) else 1, wb, ab))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = QLinear(64, classes, fl, ab)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--weight-bits", type=int, default=0)
    p.add_argument("--act-bits", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ResNet(20, a.channels, 10, a.weight_bits, a.act_bits)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.rand(a.batch, a.channels, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    elapsed = time.perf_counter() - start
    print(f"images_per_second {a.batch * a.steps / elapsed:.1f}")


if __name__ == "__main__":
    main()
