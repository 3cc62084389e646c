"""How long should the preset library's shortlist be? Measured on development targets, not the benchmark's.

    python scripts/bench/eval_library.py                 # 24 voice-like development clips (needs espeak-ng)

The targets are voice-like clips made as `vital-gym dataset voice` makes its set, but with other espeak-ng
voices and pitches than the benchmark's voice set (so no benchmark item is among them). For each target the
shipped model's candidates are rendered as `vital-gym match` renders them (no library), and every preset of
the shipped library is rendered exactly at the target's note: the shortlist of K (the K presets nearest by
the index's features) then keeps the closest of its K, and the match keeps the closest of that and the
model's best. Prints, per K: the mean distance of the match, of the shortlist's best alone, how often the
shortlist holds the library's best preset, and the renders a match spends on the library; then the model
alone and the full browse of the library (K = all) for scale.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np

from agents.dataset.voice import make_voice_set
from agents.library import shipped_library_dir
from agents.match import Matcher, render_closest
from vital_gym.audio import estimate_midi_note

VOICES = ("en+m1", "en+f1")  # the benchmark's set uses en+m3, en, en+f3
PITCHES = (35, 65)  # the benchmark's set uses 20, 50, 80, 99


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    args = ap.parse_args(argv)
    matcher = Matcher(library=[shipped_library_dir()])
    library = matcher.library
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in make_voice_set(tmp, VOICES, PITCHES):
            target = matcher.load_target(path)
            note = estimate_midi_note(target, matcher.render_config.sample_rate, matcher.render_config.midi_note)
            model = matcher.closest(target, note, 0.7)[2]
            ranked = library.shortlist(target, note, k=len(library))  # nearest by the index first
            *_, exact = render_closest(target, [e.preset for e in ranked], None, matcher.library_renderers, note, 0.7)
            rows.append((model, np.array(exact)))
            print(f"{path.name}: model {model:.3f}, library best {min(exact):.3f} (index rank {int(np.argmin(exact)) + 1})", flush=True)
    model = np.array([m for m, _ in rows])
    print(
        f"\n{len(rows)} development targets; the model alone: {model.mean():.3f}; the whole library browsed: "
        f"{np.mean([d.min() for _, d in rows]):.3f}, with the model {np.mean([min(m, d.min()) for m, d in rows]):.3f}"
    )
    print("| shortlist K | match (model + K) | the K alone | holds the library's best | library renders |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for k in args.k:
        best_k = np.array([d[:k].min() for _, d in rows])
        holds = np.mean([d[:k].min() == d.min() for _, d in rows])
        print(f"| {k} | {np.minimum(model, best_k).mean():.3f} | {best_k.mean():.3f} | {holds:.0%} | {k} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
