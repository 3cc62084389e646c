"""How many drawn candidates are worth rendering? Chosen on a development set, not the benchmark's.

Synthetic targets drawn like the training data from ``--seed`` (neither the dataset's seed nor the
benchmark's test seed), matched as ``vital-gym match`` does with each ``--draws`` value, against nearest
neighbour in the training set, paired by target (mean difference ± 95% CI, share of targets where the
model is closer), and that difference on the targets of each dataset source (uniform, pad, ...) and on
those with each module (oscillator, sampler, filter) on and off.

    python scripts/bench/eval_draws.py --n 40 --draws 0 2
    python scripts/bench/eval_draws.py --checkpoint runs/core_cpu_stage3 --n 40 --draws 0 2
    python scripts/bench/eval_draws.py --n 100 --draws 2 --out /tmp/shipped.csv   # per target, to compare models:
    vital-gym compare a=/tmp/shipped.csv b=/tmp/other.csv --reference a:draws-2
    python scripts/bench/eval_draws.py --n 100 --draws 0 --neighbour-samples 9000   # the neighbour on less data

``--out`` writes every target's distance as the benchmark's ``items.csv`` (``write_csv``; set ``dev``,
methods ``nearest`` and ``draws-N``), so ``vital-gym compare`` pairs two checkpoints' runs by target.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from agents.benchmark.methods import NearestNeighbour
from agents.benchmark.metrics import PairedDifference
from agents.benchmark.run import Result, write_csv
from agents.benchmark.testsets import DEV_SEED, TEST_SEED, synthetic_set
from agents.dataset.generate import DatasetConfig
from agents.match import Matcher
from agents.supervised.losses import module_switches
from vital_gym.resources import find_config
from vital_gym.rewards import MultiResolutionSTFTDistance


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--config", default="core", help="the dataset config (name or YAML) targets are drawn from")
    ap.add_argument("--dataset", default="data/core", help="the training set nearest neighbour searches")
    ap.add_argument("--neighbour-samples", type=int, help="nearest neighbour searches only the first N samples of it")
    ap.add_argument("--n", type=int, default=40, help="development targets")
    ap.add_argument("--draws", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--seed", type=int, default=DEV_SEED)
    ap.add_argument("--no-screen", action="store_true", help="rank candidates on exact renders (Matcher(screen=False))")
    ap.add_argument("--temperature", type=float, default=1.0, help="draw temperature (Matcher(draw_temperature=...))")
    ap.add_argument("--critic", type=Path, default=True, help="a candidate critic for the model (default: the model folder's own, if any; Matcher(critic=...))")
    ap.add_argument("--no-critic", dest="critic", action="store_false", help="render the first draws, not a critic's choice (Matcher(critic=False))")
    ap.add_argument("--out", type=Path, help="write each target's distances here (CSV, the benchmark's items.csv layout)")
    args = ap.parse_args(argv)
    config = DatasetConfig.from_yaml(find_config("dataset", args.config))
    if args.neighbour_samples is not None and args.neighbour_samples < 1:
        raise SystemExit(f"--neighbour-samples {args.neighbour_samples}: give at least 1")
    if args.seed in (TEST_SEED, config.seed):
        raise SystemExit(f"--seed {args.seed} is the benchmark's or the training data's seed; choose another")

    matcher = Matcher(args.checkpoint, screen=not args.no_screen, draw_temperature=args.temperature, critic=args.critic)
    items = synthetic_set(matcher.space, config, args.n, seed=args.seed)
    nearest = NearestNeighbour(args.dataset, matcher.codec, matcher.render_config, max_samples=args.neighbour_samples)
    distance = MultiResolutionSTFTDistance()
    reference = np.array(
        [
            distance.distance(
                matcher.renderer.render(matcher.codec.to_preset(nearest.params[nearest.nearest(it.audio)]), it.midi_note, it.velocity).audio, it.audio
            )
            for it in items
        ]
    )
    print(f"{len(items)} targets from seed {args.seed}; nearest neighbour in {nearest.description}: {reference.mean():.3f}")
    k = matcher.model.num_hypotheses
    # Where the gap to the neighbour is: the targets of each source, and those with each module on and off.
    sources = np.array([it.source for it in items])
    by_source = {s: sources == s for s in sorted(set(sources))}
    switches = sorted({int(i) for i in module_switches(matcher.space) if i >= 0})
    by_switch = {matcher.space.parameters[i].name: np.array([it.params[i] > 0.5 for it in items]) for i in switches}
    rows = {"nearest": reference}
    for draws in args.draws:
        d = rows[f"draws-{draws}"] = np.array([matcher.closest(it.audio, it.midi_note, it.velocity, draws=draws)[2] for it in items])
        diff = d - reference
        print(f"draws {draws} ({k * (1 + draws)} renders): {d.mean():.3f}; minus nearest {PairedDifference.of(d, reference)}")
        print("  by source: " + ", ".join(f"{s} {int(m.sum())}: {diff[m].mean():+.3f}" for s, m in by_source.items()))
        for name, on in by_switch.items():
            parts = [f"{'on' if flag else 'off'} {int(m.sum())}: {diff[m].mean():+.3f}" for flag, m in ((True, on), (False, ~on)) if m.any()]
            print(f"  {name:12s} " + ", ".join(parts))
    if args.out:
        results = [
            Result("dev", it.name, method, True, metrics={"mrstft": float(v)}, source=it.source) for method, d in rows.items() for it, v in zip(items, d)
        ]
        print(f"per target: {write_csv(results, args.out)}")


if __name__ == "__main__":
    main()
