"""Check that reset="auto" renders equal a new synth's renders, for presets rendered in sequence.

    python scripts/check_reproducibility.py --space core --n 80 --seed 22
    python scripts/check_reproducibility.py --space full --n 40 --seed 1

Draws ``--n`` random presets from the space (with its priors; presets that turn on Vita's random sampler
are skipped), renders each on one reused ``auto`` renderer and on a new synth, and prints how many are
bit-identical (max abs difference < 1e-5), which route each took, and every mismatch.
"""

from __future__ import annotations

import argparse
import warnings
import collections
from dataclasses import replace

import numpy as np

from vital_gym.params import ParameterSpace
from vital_gym.preset import PresetCodec
from vital_gym.render import RenderConfig, Renderer, needs_new_synth


def main() -> None:
    # Vital switches the CPU to flush-denormals mode; numpy then warns once about float32's smallest subnormal.
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="core")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note-seconds", type=float, default=1.0)
    ap.add_argument("--render-seconds", type=float, default=1.5)
    args = ap.parse_args()

    space = ParameterSpace.load(args.space)
    codec = PresetCodec(space)
    config = RenderConfig(channels=2, note_seconds=args.note_seconds, render_seconds=args.render_seconds)
    reused, fresh = Renderer(config), Renderer(replace(config, reset="fresh"))
    rng = np.random.default_rng(args.seed)
    routes: collections.Counter[str] = collections.Counter()
    exact = checked = 0
    while checked < args.n:
        preset = codec.to_preset(space.sample(rng))
        if preset.settings.get("sample_on"):
            continue
        checked += 1
        reason = needs_new_synth(preset.settings)
        routes["new synth" if reason else "settled"] += 1
        diff = float(np.max(np.abs(reused.render(preset).audio - fresh.render(preset).audio)))
        exact += diff < 1e-5
        if diff >= 1e-5:
            print(f"mismatch on preset {checked}: max abs diff {diff:.3g}, route: {reason or 'settled'}")
    print(f"{args.space} space, seed {args.seed}: {exact}/{checked} bit-identical to a new synth; routes {dict(routes)}")


if __name__ == "__main__":
    main()
