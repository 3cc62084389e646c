"""Time ``vital-gym match`` on a 2 s target on CPU, without refinement, model loading excluded.

    python scripts/bench/bench_match.py                          # the CPU model's architecture, random weights
    python scripts/bench/bench_match.py --config supervised_cpu_hypotheses   # 8 hypotheses
    python scripts/bench/bench_match.py --checkpoint agents/models/core_cpu --n 20    # the shipped model
    python scripts/bench/bench_match.py --checkpoint agents/models/core_cpu --library --presets ../shared/presets   # as vital-gym match runs
    python scripts/bench/bench_match.py --checkpoint agents/models/core_cpu --library --fast --presets ../shared/presets   # vital-gym match --fast

Without ``--checkpoint`` the network of ``--config`` (default ``configs/train/supervised_cpu.yaml``) is
built with random weights and saved to a temporary checkpoint: its predictions mean nothing, but its cost
is the trained model's. Targets are renders of random core presets at MIDI 48/60/72 (2 s). Prints the
median and worst time of a match (pitch estimate, log-mel, network, decoding, a Vita render and a
spectral distance per candidate: the K hypotheses and ``--draws`` drawn presets per hypothesis, rendered
on ``--workers`` threads, ranked on screening renders unless ``--no-screen``; then the closest
rendered exactly; with ``--library``, the shipped preset library's shortlist rendered beside them, and a model folder's
dataset index's nearest samples where it has one) and its
stages, and the machine's speed at rendering: the median time of a Vita
render of Vital's init preset (the model's note and lengths, one thread; about 40 ms on the machines
where ``../shared/FACTS.md`` was measured), so that figures from different machines can be set side by side.
``--presets DIR`` takes the targets from renders of a folder's presets (real sounds: unison, effects) at
note 60 instead of random core presets. The library is indexed before the timing starts (cached on disk).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from agents.library import shipped_library_dir
from agents.match import DEFAULT_DRAWS, FAST, Matcher
from agents.supervised.checkpoint import save_checkpoint
from agents.supervised.model import ModelConfig, SoundMatcher
from vital_gym.audio import estimate_midi_note
from vital_gym.params import ParameterSpace
from vital_gym.preset import Preset, PresetCodec
from vital_gym.render import RenderConfig, Renderer
from vital_gym.resources import find_config


def init_render_ms(config: RenderConfig, n: int = 7) -> float:
    """Median milliseconds of ``vita.Synth.render`` of Vital's init preset (the config's note and lengths,
    one thread): the machine's speed at Vita, whatever the model."""
    import vita

    synth, times = vita.Synth(), []
    for _ in range(n):
        t = time.perf_counter()
        synth.render(config.midi_note, config.velocity, config.note_seconds, config.render_seconds)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint")
    ap.add_argument("--config", default="supervised_cpu", help="training config (name or YAML) whose model is timed with random weights")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--draws", type=int, help=f"presets drawn per hypothesis (as vital-gym match --draws; default {DEFAULT_DRAWS})")
    ap.add_argument("--workers", type=int, default=None, help="render threads (default: one per core, at most 4)")
    ap.add_argument("--no-screen", action="store_true", help="rank candidates on exact renders (Matcher(screen=False))")
    ap.add_argument(
        "--critic", default=True, help="a candidate critic for the checkpoint (default: the model folder's own, if any): its pool and ranking are timed too"
    )
    ap.add_argument("--no-critic", dest="critic", action="store_false", help="time the matcher without a critic")
    ap.add_argument("--library", action="store_true", help="with the shipped preset library, as vital-gym match runs by default")
    ap.add_argument("--library-shortlist", type=int, default=None, help="library presets rendered per target (default: the matcher's)")
    ap.add_argument("--neighbours", type=int, default=None, help="dataset samples rendered per target, for a model with an index (default: the matcher's)")
    ap.add_argument("--fast", action="store_true", help="as vital-gym match --fast (agents.match.FAST), where not given")
    ap.add_argument("--presets", help="a folder of .vital files whose renders at note 60 are the targets (default: random core presets)")
    args = ap.parse_args()
    if args.fast:
        args.draws = FAST["draws"] if args.draws is None else args.draws
        args.library_shortlist = FAST["library_shortlist"] if args.library_shortlist is None else args.library_shortlist
        args.neighbours = FAST["neighbours"] if args.neighbours is None else args.neighbours
    args.draws = DEFAULT_DRAWS if args.draws is None else args.draws
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            cfg = yaml.safe_load(find_config("train", args.config).read_text())
            dataset = yaml.safe_load(find_config("dataset", "core").read_text())
            space = ParameterSpace.load("core")
            model = SoundMatcher(space, ModelConfig.from_dict(cfg["model"]))
            checkpoint = save_checkpoint(f"{tmp}/ckpt", model, "core", extra={"render": dataset["render"], "observation": dataset["observation"]})
        t = time.perf_counter()
        library = [shipped_library_dir()] if args.library else None
        matcher = Matcher(
            checkpoint,
            render_workers=args.workers,
            screen=not args.no_screen,
            critic=args.critic,
            library=library,
            library_shortlist=args.library_shortlist,
            neighbour_count=args.neighbours,
        )
        load_s = time.perf_counter() - t
        space, codec = matcher.space, PresetCodec(matcher.space)
        renderer, rng = Renderer(matcher.render_config), np.random.default_rng(0)
        targets = []
        presets = sorted(Path(args.presets).rglob("*.vital"))[: args.n] if args.presets else []
        for path in presets:
            r = renderer.render(Preset.load(path), 60)
            if r.status.ok:
                targets.append(r.audio)
        while not presets and len(targets) < args.n:
            r = renderer.render(codec.to_preset(space.sample(rng)), int(rng.choice([48, 60, 72])))
            if r.status.ok:
                targets.append(r.audio)
        matcher.match(targets[0], draws=args.draws)  # warm-up
        k = matcher.model.num_hypotheses
        n_renders = k * (1 + args.draws)
        network = "log-mel + network + decode" + (" + critic" if matcher.critic is not None else "")
        total, stages = [], {"pitch": [], network: [], f"render + distance x {n_renders}": []}
        for target in targets:
            t0 = time.perf_counter()
            note = estimate_midi_note(target, matcher.render_config.sample_rate)
            t1 = time.perf_counter()
            xs = matcher.candidates(target, note, args.draws)
            t2 = time.perf_counter()
            matcher.render_closest(target, xs, note, 0.7)
            t3 = time.perf_counter()
            stages["pitch"].append(t1 - t0)
            stages[network].append(t2 - t1)
            stages[f"render + distance x {n_renders}"].append(t3 - t2)
            t = time.perf_counter()
            matcher.match(target, draws=args.draws)
            total.append(time.perf_counter() - t)
        reference_ms = init_render_ms(matcher.render_config)
    params = sum(p.numel() for p in matcher.model.parameters())
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads")
    print(f"machine speed: a {matcher.render_config.render_seconds:g} s render of Vital's init preset takes {reference_ms:.1f} ms (median)")
    print(
        f"model: {params / 1e6:.2f}M parameters, {k} hypotheses x (1 + {args.draws} draws), {len(matcher.candidate_renderers)} render threads, {'screening' if matcher.screen else 'exact'} ranking ({'random weights' if args.checkpoint is None else args.checkpoint}); load {load_s:.2f} s"
    )
    library = f", a library of {len(matcher.library)} presets ({matcher.library_shortlist} rendered per target)" if matcher.library else ""
    if matcher.neighbours is not None:
        library += f", a dataset index of {len(matcher.neighbours)} samples ({matcher.neighbour_count} rendered per target)"
    print(f"match of a 2 s target, {len(targets)} targets{library}: median {statistics.median(total):.3f} s, worst {max(total):.3f} s")
    for name, v in stages.items():
        print(f"  {name:28s} {1000 * statistics.median(v):7.1f} ms")


if __name__ == "__main__":
    main()
