"""How well screening renders rank candidates: the exact distance of the screened choice against the best.

``vital-gym match`` ranks its candidates on screening renders (``agents.match.SCREEN_RENDER``) and renders
only the closest exactly. On development targets (synthetic, drawn like the training data from a seed
that is neither the dataset's nor the benchmark's), every candidate is rendered both ways on one thread;
prints how often the screened choice is the exact choice, how much further it is when not, the mean
correlation of the two distances over a target's candidates, and the time per candidate of each.

``--screen KEY=VALUE`` tries other screening settings (fields of :class:`~vital_gym.render.RenderConfig`,
over ``SCREEN_RENDER``'s); the target is resampled to the screening rate and cut to its length, so a
lower ``sample_rate`` or a shorter ``render_seconds`` can be weighed before ``vital-gym match`` would use it.

    python scripts/check_screening.py --n 40 --draws 2
    python scripts/check_screening.py --n 30 --screen sample_rate=22050
    python scripts/check_screening.py --n 30 --screen render_seconds=1.0
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from agents.benchmark.testsets import DEV_SEED, synthetic_set  # noqa: E402
from agents.cli import key_values  # noqa: E402
from agents.dataset.generate import DatasetConfig  # noqa: E402
from agents.match import SCREEN_RENDER, Matcher  # noqa: E402
from vital_gym.audio import resample  # noqa: E402
from vital_gym.render import RenderConfig, Renderer  # noqa: E402
from vital_gym.rewards import MultiResolutionSTFTDistance  # noqa: E402


def screen_settings(pairs: list[str]) -> dict[str, object]:
    """``SCREEN_RENDER`` updated with ``KEY=VALUE`` pairs (values read as YAML: numbers, strings, null); keys and
    values are checked by :meth:`RenderConfig.from_dict`."""
    return {**SCREEN_RENDER, **(key_values(pairs, "--screen") or {})}


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--dataset-config", default="configs/dataset/core.yaml")
    ap.add_argument("--n", type=int, default=40, help="development targets")
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--screen", nargs="*", default=[], metavar="KEY=VALUE", help="screening settings to try over SCREEN_RENDER's")
    args = ap.parse_args(argv)
    try:
        settings = screen_settings(args.screen)
        RenderConfig.from_dict(settings)  # unknown keys and bad values refused here, before the model loads
    except (TypeError, ValueError) as e:  # TypeError: a value of the wrong kind, e.g. sample_rate=fast
        ap.error(f"--screen {' '.join(args.screen)}: {e}")
    matcher = Matcher(args.checkpoint, render_workers=1)
    screen = dataclasses.replace(matcher.render_config, **settings)
    if screen.render_seconds > matcher.render_config.render_seconds:
        ap.error(f"--screen render_seconds={screen.render_seconds}: longer than the model's targets ({matcher.render_config.render_seconds} s)")
    items = synthetic_set(matcher.space, DatasetConfig.from_yaml(Path(args.dataset_config)), args.n, seed=DEV_SEED)
    renderers = {"exact": Renderer(matcher.render_config), "screening": Renderer(screen)}
    seconds = dict.fromkeys(renderers, 0.0)
    best, chosen, correlation, count = [], [], [], 0
    distances = {name: MultiResolutionSTFTDistance() for name in renderers}
    for item in items:
        presets = [matcher.codec.to_preset(x) for x in matcher.candidates(item.audio, item.midi_note, args.draws)]
        d = {}
        for name, renderer in renderers.items():
            target = resample(item.audio, matcher.render_config.sample_rate, renderer.config.sample_rate)
            distances[name].set_target(target[:, : renderer.config.num_samples])
            start = time.perf_counter()
            d[name] = np.array([distances[name](renderer.render(p, item.midi_note, item.velocity).audio) for p in presets])
            seconds[name] += time.perf_counter() - start
        best.append(d["exact"].min())
        chosen.append(d["exact"][d["screening"].argmin()])
        correlation.append(np.corrcoef(d["exact"], d["screening"])[0, 1])
        count += len(presets)
    best, chosen = np.array(best), np.array(chosen)
    loss = chosen - best
    changed = {k: v for k, v in dataclasses.asdict(screen).items() if v != getattr(matcher.render_config, k)}
    print(f"{len(items)} targets x {count // len(items)} candidates (draws {args.draws}), development seed {DEV_SEED}; screening {changed}")
    print(f"best exact distance {best.mean():.3f}; screened choice {chosen.mean():.3f} (the same candidate on {np.mean(loss == 0):.0%} of targets)")
    print(f"further by {loss.mean():.4f} on average, {loss.max():.3f} at worst; mean correlation of the distances {np.mean(correlation):.3f}")
    print(", ".join(f"{name} {1000 * s / count:.0f} ms" for name, s in seconds.items()) + " per candidate (one thread)")


if __name__ == "__main__":
    main()
