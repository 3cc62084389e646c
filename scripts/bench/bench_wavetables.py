"""What bank wavetables cost to render: loading a table in each form, and a sample of each space.

    python scripts/bench/bench_wavetables.py --tables ../shared/wavetables --n 30

1. Loading one table into Vital (``load_json`` of the init preset with oscillator 1's table replaced), median
   over the folder's ``.vitaltable`` files: as the file stores it (mostly "Audio File Source") and in the bank's
   form (``vital_gym.wavetables``: up to 16 key frames, no interpolation).
2. A sample as the dataset generator makes one (``Renderer`` with ``reset="auto"``, 2 s note, one core), for
   random presets of the ``core`` and ``studio`` spaces (drawn from their priors, seeded), with the parts:
   a new ``vita.Synth``, ``load_json`` and the render itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from vital_gym.params import ParameterSpace
from vital_gym.preset import PresetCodec, init_preset
from vital_gym.render import RenderConfig, Renderer
from vital_gym.wavetables import read_vitaltable


def median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def load_ms(synth, table: dict) -> float:
    data = json.loads(init_preset().to_json())
    data["settings"]["wavetables"][0] = table
    text = json.dumps(data)
    start = time.perf_counter()
    if not synth.load_json(text):
        raise RuntimeError("vita refused the preset")
    return time.perf_counter() - start


def table_costs(folder: Path) -> None:
    import vita

    files = sorted(folder.glob("*.vitaltable"))
    synth = vita.Synth()
    as_stored, as_bank = [], []
    for path in files:
        as_stored.append(load_ms(synth, json.loads(path.read_bytes())))
        as_bank.append(load_ms(synth, read_vitaltable(path).to_vital()))
    init = [load_ms(synth, init_preset().settings["wavetables"][0]) for _ in range(10)]
    print(f"load_json, one table, median over {len(files)} files of {folder}:")
    print(f"  as stored (.vitaltable)   {median_ms(as_stored):6.1f} ms")
    print(f"  bank form (16 key frames) {median_ms(as_bank):6.1f} ms")
    print(f"  Vital's init table        {median_ms(init):6.1f} ms")


def sample_costs(space_name: str, n: int, seed: int) -> None:
    import vita

    space = ParameterSpace.load(space_name)
    codec = PresetCodec(space)
    config = RenderConfig()
    renderer = Renderer(config)
    rng = np.random.default_rng(seed)
    presets = [codec.to_preset(space.sample(rng)) for _ in range(n)]
    whole = []
    for preset in presets:
        start = time.perf_counter()
        renderer.render(preset)
        whole.append(time.perf_counter() - start)
    new, load, render = [], [], []
    for preset in presets:
        text = renderer.prepare(preset).to_json()
        t0 = time.perf_counter()
        synth = vita.Synth()
        t1 = time.perf_counter()
        synth.load_json(text)
        t2 = time.perf_counter()
        synth.render(config.midi_note, config.velocity, config.note_seconds, config.render_seconds)
        t3 = time.perf_counter()
        new.append(t1 - t0)
        load.append(t2 - t1)
        render.append(t3 - t2)
    print(
        f"{space_name:7s} sample (Renderer, auto reset): median {median_ms(whole):6.1f} ms, mean {1000 * statistics.mean(whole):6.1f} ms"
        f"  | parts: new synth {median_ms(new):5.1f}, load_json {median_ms(load):5.1f}, render {median_ms(render):5.1f} ms (medians, n={n})"
    )


def main() -> None:
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=Path, help="a folder of .vitaltable files (e.g. ../shared/wavetables)")
    ap.add_argument("--n", type=int, default=30, help="random presets per space")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.tables:
        table_costs(args.tables)
    for space in ("core", "studio"):
        sample_costs(space, args.n, args.seed)


if __name__ == "__main__":
    main()
