"""Held-out learning curves of PPO runs (``eval_history.json`` written by ``vital-gym ppo``).

    vital-gym curves --run warm=runs/ppo-warm --run scratch=runs/ppo-scratch -o docs/img/ppo_warm_vs_scratch.png

Plots mean reward and spectral distance on the fixed held-out targets against environment steps, one
line per run, and prints a markdown table of each run's figures before training, at its best evaluation
and at the end.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_history(folder: Path) -> dict:
    path = folder / "eval_history.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a finished run of vital-gym ppo (no eval_history.json)")
    return json.loads(path.read_text())


def table(runs: dict[str, dict]) -> str:
    lines = [
        "| run | steps | reward before | reward best | reward after | distance before | distance after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, h in runs.items():
        curve = h["curve"]
        best = max(curve, key=lambda c: c["mean_reward"])
        lines.append(
            f"| {label} | {curve[-1]['timesteps']} | {h['before']['mean_reward']:.4f} | {best['mean_reward']:.4f} (at {best['timesteps']}) "
            f"| {h['after']['mean_reward']:.4f} | {h['before']['spectral_distance']:.4f} | {h['after']['spectral_distance']:.4f} |"
        )
    return "\n".join(lines)


def plot(runs: dict[str, dict], path: str | Path, title: str) -> Path:
    path = Path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, h in runs.items():
        steps = [c["timesteps"] for c in h["curve"]]
        axes[0].plot(steps, [c["mean_reward"] for c in h["curve"]], marker="o", label=label)
        axes[1].plot(steps, [c["spectral_distance"] for c in h["curve"]], marker="o", label=label)
    axes[0].set_ylabel("held-out mean reward (higher is better)")
    axes[1].set_ylabel("held-out spectral distance (lower is better)")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
