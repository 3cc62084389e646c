"""How well a small network learns Vita's sound from the parameters: a probe for a "loss through the sound".

A differentiable proxy of the synth (parameters -> log-mel) would let the matcher train or refine through a
spectral loss instead of the parameter loss. This probe trains the simplest such proxy, an MLP from the
parameter vector (normalised, as stored), the note and the velocity to the pooled log-mel that nearest
neighbour compares (``pool_logmel``), on a generated dataset's shards, and reports on its
held-out shards, per source: the proxy's mean squared error, its R² (1 - MSE / the variance of that source's
held-out log-mels about their mean) and, for scale, the error of the training sample nearest in parameter space
and of the one nearest in sound (the log-mel nearest neighbour finds).

    python scripts/probe_proxy.py                       # data/core: shards 0-97 train, 98-99 held out
    python scripts/probe_proxy.py --epochs 2 --max-train 20000

A proxy is only useful where its error is well below the distance between the candidates it must rank.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from agents.benchmark.methods import pool_logmel  # noqa: E402
from agents.dataset.shards import Manifest, read_shard  # noqa: E402


def load(folder: Path, shards: list[str], notes: list[int]) -> dict[str, torch.Tensor]:
    """Inputs ``x`` (N, P + notes + 1), pooled log-mels ``y`` (N, D) in [0, 1], ``source`` (N,)."""
    xs, ys, sources = [], [], []
    for name in shards:
        s = read_shard(folder / name, ("logmel", "params", "midi_note", "velocity", "source"))
        note = torch.from_numpy(s["midi_note"].astype(np.int64))
        onehot = torch.stack([note == n for n in notes], 1).float()
        xs.append(torch.cat([torch.from_numpy(s["params"]).float(), onehot, torch.from_numpy(s["velocity"]).float()[:, None]], 1))
        ys.append(pool_logmel(torch.from_numpy(s["logmel"]).float() / 255.0))
        sources.append(torch.from_numpy(s["source"].astype(np.int64)))
    return {"x": torch.cat(xs), "y": torch.cat(ys), "source": torch.cat(sources)}


class Proxy(nn.Module):
    """``(B, inputs)`` -> ``(B, D)`` pooled log-mel in [0, 1]."""

    def __init__(self, inputs: int, outputs: int, width: int = 1024, depth: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(inputs if i == 0 else width, width), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def nearest_rows(train_x: torch.Tensor, x: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """For each row of ``x``, the index of the nearest row of ``train_x`` (Euclidean)."""
    norms = (train_x**2).sum(1)
    return torch.cat([(norms - 2.0 * x[i : i + chunk] @ train_x.T).argmin(1) for i in range(0, len(x), chunk)])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("data/core"))
    ap.add_argument("--val-shards", type=int, default=2, help="the last shards, held out")
    ap.add_argument("--max-train", type=int, help="train on the first N training samples only")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.val_shards < 1:
        raise SystemExit(f"--epochs {args.epochs}, --batch-size {args.batch_size}, --val-shards {args.val_shards}: give at least 1")

    manifest = Manifest.load(args.dataset)
    shards = sorted(manifest.shards)
    if len(shards) <= args.val_shards:
        raise SystemExit(f"{args.dataset} has {len(shards)} finished shards; need more than --val-shards {args.val_shards}")
    notes = [int(n) for n in manifest.config.get("midi_notes", [60])]
    names = list(manifest.config.get("sources", {}))
    start = time.perf_counter()
    train = load(args.dataset, shards[: -args.val_shards], notes)
    val = load(args.dataset, shards[-args.val_shards :], notes)
    if args.max_train:
        train = {k: v[: args.max_train] for k, v in train.items()}
    print(f"{len(train['x'])} training and {len(val['x'])} held-out samples of {args.dataset} "
          f"({train['x'].shape[1]} inputs, {train['y'].shape[1]} outputs), loaded in {time.perf_counter() - start:.0f} s")

    torch.manual_seed(args.seed)
    model = Proxy(train["x"].shape[1], train["y"].shape[1], args.width)
    steps = args.epochs * (len(train["x"]) // args.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(args.seed)

    def held_out() -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            err = torch.cat([((model(val["x"][i : i + 1024]) - val["y"][i : i + 1024]) ** 2).mean(1) for i in range(0, len(val["x"]), 1024)])
        model.train()
        return err

    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(len(train["x"]), generator=generator)
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = order[i : i + args.batch_size]
            loss = ((model(train["x"][batch]) - train["y"][batch]) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        print(f"epoch {epoch + 1}: train MSE {loss.item():.5f}, held-out MSE {held_out().mean():.5f} ({time.perf_counter() - start:.0f} s)")

    proxy_err = held_out()
    by_params = ((train["y"][nearest_rows(train["x"], val["x"])] - val["y"]) ** 2).mean(1)
    by_sound = ((train["y"][nearest_rows(train["y"], val["y"])] - val["y"]) ** 2).mean(1)  # what nearest neighbour finds
    print(f"{'source':10s} {'n':>5s} {'proxy MSE':>10s} {'R2':>6s} {'nearest params':>15s} {'nearest sound':>14s} {'variance':>9s}")
    groups = [(names[s] if s < len(names) else str(s), val["source"] == s) for s in val["source"].unique().tolist()]
    for name, mask in groups + [("all", torch.ones(len(val["x"]), dtype=torch.bool))]:
        variance = ((val["y"][mask] - val["y"][mask].mean(0)) ** 2).mean()  # about this group's own mean log-mel
        r2 = 1.0 - proxy_err[mask].mean() / variance
        print(f"{name:10s} {int(mask.sum()):5d} {proxy_err[mask].mean():10.5f} {r2:6.3f} {by_params[mask].mean():15.5f} "
              f"{by_sound[mask].mean():14.5f} {variance:9.5f}")


if __name__ == "__main__":
    main()
