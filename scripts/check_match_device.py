"""Does the matcher choose on another device (a GPU) what it chooses on the CPU?

The model and its candidate critic run on ``--device``; the draws stay on the CPU's generator, so both
devices should render the same 24 candidates, bar the rare draw or critic rank that a rounding difference
(cuDNN's TF32 convolutions, fused kernels) tips over. On development targets (``DEV_SEED``, never the
benchmark's) it prints, per target, how many of the candidates agree, the largest parameter difference and
whether the rendered choice is the same; then the median seconds of ``Matcher.candidates`` on each device.
Exits 1 where fewer than ``--min-agree`` of the targets have the same candidates.

    python scripts/check_match_device.py --device cuda --n 16
    python scripts/check_match_device.py --device cpu --n 2      # the CPU against itself: everything agrees
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.benchmark.testsets import DEV_SEED, synthetic_set  # noqa: E402
from agents.dataset.generate import DatasetConfig  # noqa: E402
from agents.match import DEFAULT_DRAWS, Matcher  # noqa: E402

SAME = 1e-4  # largest parameter difference (normalised units) still counted as the same candidate

def seconds(fn, repeats: int = 3) -> float:
    """Median wall time of ``fn()`` after one warm-up call, synchronising a GPU around each."""
    fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--checkpoint", default=None, help="model folder (default: the shipped model, with its critic)")
    ap.add_argument("--dataset-config", type=Path, default=Path("configs/dataset/core.yaml"))
    ap.add_argument("--n", type=int, default=16, help="development targets")
    ap.add_argument("--draws", type=int, default=DEFAULT_DRAWS)
    ap.add_argument("--min-agree", type=float, default=0.9, help="share of targets whose candidates must agree")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    cpu = Matcher(args.checkpoint, device="cpu")
    other = Matcher(args.checkpoint, device=args.device)
    print(f"model on cpu and {args.device}; critic: {'yes' if cpu.critic is not None else 'none'}; torch {torch.__version__}")
    items = synthetic_set(cpu.space, DatasetConfig.from_yaml(args.dataset_config), args.n, seed=DEV_SEED)
    agree, same_choice = 0, 0
    times: dict[str, list[float]] = {"cpu": [], f"device {args.device}": []}
    print(" target          same candidates  largest difference  same choice  distance cpu / device")
    for k, it in enumerate(items):
        a = cpu.candidates(it.audio, it.midi_note, args.draws, seed=k)
        b = other.candidates(it.audio, it.midi_note, args.draws, seed=k)
        rows_equal = np.all(np.abs(a - b) <= SAME, axis=1)
        agree += bool(rows_equal.all())
        xa, _, da, _ = cpu.render_closest(it.audio, a, it.midi_note, it.velocity)
        xb, _, db, _ = other.render_closest(it.audio, b, it.midi_note, it.velocity)
        same = bool(np.abs(xa - xb).max() <= SAME)
        same_choice += same
        print(f" {it.name:15s} {int(rows_equal.sum()):3d} / {len(a):<3d}        {np.abs(a - b).max():.2e}            "
              f"{'yes' if same else 'no ':3s}          {da:.4f} / {db:.4f}")
        if k < 4:  # timing on a few targets is enough; the renders dominate a match anyway
            for name, m in zip(times, (cpu, other)):
                times[name].append(seconds(lambda m=m: m.candidates(it.audio, it.midi_note, args.draws, seed=k)))
    share = agree / len(items)
    print(f"same candidates on {agree} / {len(items)} targets, the same rendered choice on {same_choice} / {len(items)}")
    print("Matcher.candidates (encoder, decoder, draws, critic), median s per target: "
          + ", ".join(f"{name} {np.median(t):.3f}" for name, t in times.items()))
    return 0 if share >= args.min_agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
