"""Which of a model's parameter errors cost it spectral distance? An oracle-substitution analysis.

For held-out synthetic targets (the benchmark's test set), the model predicts a parameter vector; then,
one parameter subset at a time, the true values are written into the prediction and the result is
rendered again. The drop in MR-STFT distance is what getting that subset right would be worth. Also
prints the figures behind the README's diagnosis: the distance by the note the target is played at,
transpose MAE in semitones, and how far a note-conditioned decoder's transpose moves between notes 48 and
72 on the same audio.

    python scripts/analyse_errors.py --n 100
    python scripts/analyse_errors.py --checkpoint runs/supervised_cpu/best --n 200
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from agents.benchmark.testsets import synthetic_set
from agents.dataset.generate import DatasetConfig
from agents.match import Matcher
from vital_gym.params import Kind, ParameterSpace
from vital_gym.rewards import MultiResolutionSTFTDistance


def subsets(space: ParameterSpace) -> dict[str, list[int]]:
    """Named parameter subsets: each group, plus cross-group ones (pitch, levels, envelope 1)."""
    names = [p.name for p in space.parameters]
    out: dict[str, list[int]] = {}
    for g in space.groups:
        if not g.startswith("modulation"):
            out[g] = [i for i, p in enumerate(space.parameters) if p.group == g]
    out["modulation"] = [i for i, n in enumerate(names) if n.startswith("mod_")]
    out["pitch (transpose, tune)"] = [i for i, n in enumerate(names) if n.endswith(("_transpose", "_tune"))]
    out["oscillator on/level"] = [i for i, n in enumerate(names) if n.endswith(("_on", "_level")) and not n.startswith("filter")]
    out["envelope 1 (amplitude)"] = [i for i, n in enumerate(names) if n.startswith("env_1_")]
    out["discrete only"] = [i for i, p in enumerate(space.parameters) if p.kind in (Kind.CATEGORICAL, Kind.TOGGLE)]
    out["continuous only"] = [i for i, p in enumerate(space.parameters) if p.kind in (Kind.CONTINUOUS, Kind.INTEGER)]
    out["everything"] = list(range(len(names)))
    return out


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--dataset-config", default="configs/dataset/core.yaml")
    ap.add_argument("--n", type=int, default=100, help="synthetic test items")
    args = ap.parse_args(argv)

    matcher = Matcher(args.checkpoint)
    space, codec, renderer = matcher.space, matcher.codec, matcher.renderer
    items = synthetic_set(space, DatasetConfig.from_yaml(Path(args.dataset_config)), args.n)
    distance = MultiResolutionSTFTDistance()

    def score(x: np.ndarray, item) -> float:
        return distance.distance(renderer.render(codec.to_preset(x), item.midi_note, item.velocity).audio, item.audio)

    groups = subsets(space)
    base, gains = [], {g: [] for g in groups}
    transpose = [i for i, p in enumerate(space.parameters) if p.name.endswith("_transpose")]
    semitones = np.array([space.parameters[i].high - space.parameters[i].low for i in transpose], dtype=float)
    t_err, t_shift = [], []
    for item in items:
        x, _, d, _ = matcher.closest(item.audio, item.midi_note, item.velocity)  # as `vital-gym match` chooses
        base.append(d)
        for g, idx in groups.items():
            fixed = x.copy()
            fixed[idx] = item.params[idx]
            gains[g].append(d - score(fixed, item))
        t_err.append(np.abs(x[transpose] - item.params[transpose]) * semitones)
        if matcher.model.note_conditioned:
            lo, hi = (matcher.predict(item.audio, n)[transpose] * semitones for n in (48, 72))
            t_shift.append(lo - hi)  # 24 when the decoder fully compensates the key

    print(f"model: {args.checkpoint or 'shipped'}; {len(items)} synthetic items; mean MR-STFT {np.mean(base):.3f}")
    notes = np.array([item.midi_note for item in items])
    print("by the note the target is played at: " + ", ".join(
        f"{n}: {np.mean(np.array(base)[notes == n]):.3f} ({int(np.sum(notes == n))})" for n in sorted(set(notes.tolist()))))
    print(f"{'true values for':32s} {'MR-STFT after':>14s} {'gain':>8s} {'params':>7s}")
    for g in sorted(gains, key=lambda g: -np.mean(gains[g])):
        print(f"{g:32s} {np.mean(base) - np.mean(gains[g]):14.3f} {np.mean(gains[g]):8.3f} {len(groups[g]):7d}")
    err = np.array(t_err)
    names = [space.parameters[i].name for i in transpose]
    print("transpose MAE (semitones): " + ", ".join(f"{n} {e:.2f}" for n, e in zip(names, err.mean(0))))
    if t_shift:
        print("predicted transpose at note 48 minus at note 72 (24 = full compensation): "
              + ", ".join(f"{n} {s:.2f}" for n, s in zip(names, np.mean(t_shift, 0))))


if __name__ == "__main__":
    main()
