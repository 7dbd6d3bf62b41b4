"""PyTorch twin of the dfdx teacher and student, timed like `benches/train_step.rs`.

Same architecture and sizes as `stages/src/model` (spec defaults): per-modality
branch (temporal conv 64x(1,32) stride (1,8), BN, ReLU, spatial conv (C,1), dropout
0.3, positional embedding 61x64, 3 post-LN encoder layers 64/8 heads/FFN 64, dropout
0.1), gated score blocks with BatchNorm1d over tokens, multi-depth fusion, classifier
flatten -> Dropout 0.5 -> 3x (Dense 128, ReLU) -> Dense 2.

Usage: python stages/benches/torch_step.py [--threads 2] [--batch 64] [--steps 10]
       [--device cpu|cuda] [--epoch-windows N]
Prints the parameter counts and the median time of one training step (forward,
cross-entropy, backward, Adam) and of one eval forward, per network; with
--epoch-windows also the time of a teacher epoch of N windows (fresh host batches
copied to the device every step, the loss read back every step as pipe's loop does).
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Branch(nn.Module):
    def __init__(self, channels, samples=512, filters=64, kernel=32, stride=8, dim=64,
                 heads=8, ffn=64, layers=3, front_dropout=0.3, dropout=0.1):
        super().__init__()
        self.temporal = nn.Conv2d(1, filters, (1, kernel), stride=(1, stride))
        self.bn = nn.BatchNorm2d(filters)
        self.spatial = nn.Conv2d(filters, dim, (channels, 1))
        self.drop = nn.Dropout(front_dropout)
        tokens = (samples - kernel) // stride + 1
        self.pos = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, ffn, dropout, batch_first=True)
            for _ in range(layers))

    def forward(self, x):  # (B, C, S)
        h = F.relu(self.bn(self.temporal(x.unsqueeze(1))))  # (B, F, C, L)
        h = self.spatial(h).squeeze(2).transpose(1, 2)  # (B, L, dim)
        h = self.drop(h) + self.pos
        depths = []
        for block in self.blocks:
            h = block(h)
            depths.append(h)
        return depths


class Score(nn.Module):
    def __init__(self, tokens, dim=64):
        super().__init__()
        self.w1 = nn.Linear(dim, dim)
        self.bn1 = nn.BatchNorm1d(tokens)
        self.w2 = nn.Linear(dim, dim)
        self.bn2 = nn.BatchNorm1d(tokens)

    def forward(self, x):  # (B, N, dim)
        s = F.softsign(self.bn2(self.w2(F.relu(self.bn1(self.w1(x))))))
        return x * s


class Classifier(nn.Module):
    def __init__(self, features, hidden=128, layers=3, classes=2, dropout=0.5):
        super().__init__()
        mods = [nn.Flatten(), nn.Dropout(dropout)]
        width = features
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        mods.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


class Teacher(nn.Module):
    def __init__(self, eeg_channels=28, eog_channels=2, tokens=61, dim=64, layers=3):
        super().__init__()
        self.eeg = Branch(eeg_channels)
        self.eog = Branch(eog_channels)
        self.pairs = nn.ModuleList(
            nn.ModuleList([Score(2 * tokens, dim), Score(2 * tokens, dim)])
            for _ in range(layers - 1))
        self.classifier = Classifier(2 * tokens * dim)

    def forward(self, eeg, eog):
        he, ho = self.eeg(eeg), self.eog(eog)
        cats = [torch.cat([a, b], dim=1) for a, b in zip(he, ho)]
        f = sum(lo(cats[i]) + up(cats[i + 1]) for i, (lo, up) in enumerate(self.pairs))
        half = f.shape[1] // 2
        return self.classifier(f), f[:, :half] + f[:, half:]


class Student(nn.Module):
    def __init__(self, channels=2, tokens=61, dim=64, layers=3):
        super().__init__()
        self.branch = Branch(channels)
        self.gates = nn.ModuleList(Score(tokens, dim) for _ in range(layers))
        self.classifier = Classifier(tokens * dim)

    def forward(self, eog):
        f = sum(g(h) for g, h in zip(self.gates, self.branch(eog)))
        return self.classifier(f), f


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(fn, steps, device, warmup=2):
    """Median wall ms of `steps` runs after `warmup`, and mean CPU ms per run (all
    threads of the process; less sensitive to other load on a shared machine)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    cpu0 = time.process_time()
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    cpu = (time.process_time() - cpu0) * 1e3 / steps
    return statistics.median(times), cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epoch-windows", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    b = args.batch
    eeg = torch.randn(b, 28, 512, device=dev)
    eog = torch.randn(b, 2, 512, device=dev)
    y = torch.randint(0, 2, (b,), device=dev)
    print(f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}, batch {b}")

    for name, net, inputs in [("teacher", Teacher(), (eeg, eog)), ("student", Student(), (eog,))]:
        net = net.to(dev)
        params = sum(p.numel() for p in net.parameters() if p.requires_grad)
        print(f"{name}: {params} trainable parameters")
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step():
            net.train()
            opt.zero_grad(set_to_none=True)
            logits, _ = net(*inputs)
            F.cross_entropy(logits, y).backward()
            opt.step()

        def infer():
            net.eval()
            with torch.no_grad():
                net(*inputs)

        for what, fn in [("train step", step), ("eval forward", infer)]:
            ms, cpu = measure(fn, args.steps, dev)
            print(f"{name} {what}: median {ms:.1f} ms ({b / ms * 1e3:.1f} samples/s), {cpu:.1f} ms CPU")

        if name == "teacher" and args.epoch_windows > 0:
            n = -(-args.epoch_windows // b)
            host = [(torch.randn(b, 28, 512), torch.randn(b, 2, 512), torch.randint(0, 2, (b,)))
                    for _ in range(min(n, 8))]
            net.train()
            sync(dev)
            t0 = time.perf_counter()
            for i in range(n):
                e, o, l = (t.to(dev) for t in host[i % len(host)])
                opt.zero_grad(set_to_none=True)
                logits, _ = net(e, o)
                loss = F.cross_entropy(logits, l)
                loss.item()
                loss.backward()
                opt.step()
            sync(dev)
            secs = time.perf_counter() - t0
            print(f"teacher epoch ({n * b} windows, {n} steps): {secs:.2f} s ({n * b / secs:.1f} samples/s)")


if __name__ == "__main__":
    main()
