"""Held-out learning curves of PPO runs (``eval_history.json`` written by ``vital-gym ppo``).

    vital-gym curves --run warm=runs/ppo-warm --run scratch=runs/ppo-scratch -o docs/img/ppo_warm_vs_scratch.png
    vital-gym curves --run hypotheses=runs/ppo-s0 --run hypotheses=runs/ppo-s1 --run hypotheses=runs/ppo-s2 -o OUT.png

Runs given the same label are seeds of one configuration: they are drawn as their mean with the band
from the lowest to the highest seed. Plots mean reward and spectral distance on the fixed held-out
targets against environment steps (those every seed evaluated at), one line per label, and prints a
markdown table of each label's figures before training, at its best evaluation and at the end (with
several seeds: mean ± standard deviation over seeds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def read_history(folder: Path) -> dict:
    path = folder / "eval_history.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a finished run of vital-gym ppo (no eval_history.json)")
    return json.loads(path.read_text())


def curves(histories: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """The environment steps every run evaluated at ``(T,)`` and each run's ``key`` there ``(runs, T)``."""
    steps = sorted(set.intersection(*({c["timesteps"] for c in h["curve"]} for h in histories)))
    values = [[next(c[key] for c in h["curve"] if c["timesteps"] == t) for t in steps] for h in histories]
    return np.array(steps), np.array(values, dtype=float)


def spread(values: list[float], digits: int = 4) -> str:
    """One run's value, or several seeds' mean ± standard deviation."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def table(runs: dict[str, list[dict]]) -> str:
    lines = [
        "| run | seeds | steps | reward before | reward best | reward after | distance before | distance after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, histories in runs.items():
        bests = [max(h["curve"], key=lambda c: c["mean_reward"]) for h in histories]
        best = spread([b["mean_reward"] for b in bests]) + (f" (at {bests[0]['timesteps']})" if len(bests) == 1 else "")
        lines.append(
            f"| {label} | {len(histories)} | {max(h['curve'][-1]['timesteps'] for h in histories)} "
            f"| {spread([h['before']['mean_reward'] for h in histories])} | {best} | {spread([h['after']['mean_reward'] for h in histories])} "
            f"| {spread([h['before']['spectral_distance'] for h in histories])} | {spread([h['after']['spectral_distance'] for h in histories])} |"
        )
    return "\n".join(lines)


def plot(runs: dict[str, list[dict]], path: str | Path, title: str) -> Path:
    path = Path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, histories in runs.items():
        name = label if len(histories) == 1 else f"{label} ({len(histories)} seeds)"
        for ax, key in zip(axes, ("mean_reward", "spectral_distance")):
            steps, values = curves(histories, key)
            line = ax.plot(steps, values.mean(0), marker="o", label=name)[0]
            if len(histories) > 1:
                ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
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
