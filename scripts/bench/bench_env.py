"""Benchmark VitalMatch-v0's step against a raw Vita render, with a breakdown and the CLAP term's cost.

    HF_HUB_OFFLINE=1 python scripts/bench/bench_env.py            # default config: core space, one-shot, 2 s
    HF_HUB_OFFLINE=1 python scripts/bench/bench_env.py --n 20 --threads 2

Every figure is a median over the same ``--n`` random core-space presets (the env's own random-target
distribution, seeded). The raw render is ``vita.Synth.render`` alone on a synth that already holds the
preset; a step is ``env.step(action)`` for that preset's action (one-shot mode, spectral reward only),
with each of the renderer's reset policies: ``auto`` (the default: a used synth settled back to a new
one's state, or a new synth when the preset needs it), ``settle`` (settled, never a new synth: approximate
for the presets that need one), ``fresh`` (a new synth every render) and ``none`` (Vita's plain reuse).
The script also counts, for ``auto``, ``settle`` and ``none``, how many renders made in sequence on one
synth equal a new synth's render of the same preset.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch

from vital_gym.envs import VitalMatchEnv
from vital_gym.render import _blob_key


def median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def bench_steps(env: VitalMatchEnv, vectors: list[np.ndarray]) -> dict[str, float]:
    """Median ms of the raw render, the whole step, and each stage of the step."""
    import vita

    cfg = env.render_config
    raw, step = [], []
    stages: dict[str, list[float]] = {k: [] for k in ("encode", "synth reset", "apply preset", "render", "features", "reward")}
    env.reset(seed=0)
    for x in vectors:
        preset = env.renderer.prepare(env.codec.to_preset(x))
        synth = vita.Synth()
        synth.load_json(preset.to_json())
        synth.set_sample_rate(cfg.sample_rate)
        _, dt = timed(synth.render, cfg.midi_note, cfg.velocity, cfg.note_seconds, cfg.render_seconds)
        raw.append(dt)

        action = env.space.vector_to_action(x)
        _, dt = timed(env.step, action)
        step.append(dt)

        # The same step, stage by stage, through the same code paths.
        r = env.renderer
        p, dt = timed(lambda r=r, action=action: r.prepare(env.codec.to_preset(env.codec.canonical(env.space.action_to_vector(action)))))
        stages["encode"].append(dt)
        blob = _blob_key(p.settings)
        synth, dt = timed(r._reset_synth, p, blob, cfg.midi_note, cfg.velocity)
        _, dt_apply = timed(r._apply, synth, p, blob)
        stages["synth reset"].append(dt)
        stages["apply preset"].append(dt_apply)
        audio, dt = timed(r._synth.render, cfg.midi_note, cfg.velocity, cfg.note_seconds, cfg.render_seconds)
        stages["render"].append(dt)
        mono = np.asarray(audio, dtype=np.float32).mean(axis=0, keepdims=True)
        _, dt = timed(env.features, mono)
        stages["features"].append(dt)
        _, dt = timed(env.reward_fn, mono)
        stages["reward"].append(dt)
    out = {"raw render": median_ms(raw), "env.step": median_ms(step)}
    out.update({k: median_ms(v) for k, v in stages.items()})
    return out


def exactness(env: VitalMatchEnv, vectors: list[np.ndarray], reset: str) -> tuple[int, int, int]:
    """How many presets, rendered in sequence on one reused synth, equal a new synth's render."""
    from dataclasses import replace

    from vital_gym.render import Renderer, needs_new_synth

    reused = Renderer(replace(env.render_config, reset=reset))
    fresh = Renderer(replace(env.render_config, reset="fresh"))
    exact = checked = new_synth = 0
    for x in vectors:
        preset = env.codec.to_preset(x)
        if preset.settings["sample_on"]:
            continue  # vita's sampler is random: no policy can repeat it
        checked += 1
        new_synth += needs_new_synth(preset.settings) is not None
        exact += float(np.max(np.abs(reused.render(preset).audio - fresh.render(preset).audio))) < 1e-5
    return exact, checked, new_synth


def bench_clap(sample_rate: int, seconds: float, repeats: int) -> dict[str, float]:
    from vital_gym.rewards import ClapEmbedder, RewardConfig

    t = time.perf_counter()
    clap = ClapEmbedder.from_config(RewardConfig(clap_weight=1.0, clap_checkpoint="random"), device="cpu")
    build = time.perf_counter() - t
    rng = np.random.default_rng(0)
    one = (rng.standard_normal((1, 1, int(sample_rate * seconds))) * 0.1).astype(np.float32)
    eight = np.repeat(one, 8, axis=0)
    clap.embed(one, sample_rate)  # warm-up
    per_step = [timed(clap.embed, one, sample_rate)[1] for _ in range(repeats)]
    per_batch = [timed(clap.embed, eight, sample_rate)[1] for _ in range(max(2, repeats // 2))]
    return {"build (s)": build, "per step": median_ms(per_step), "per batch of 8": median_ms(per_batch)}


def main() -> None:
    # Vital switches the CPU to flush-denormals mode; numpy then warns once about float32's smallest subnormal.
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="presets to time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (Vita renders on one core)")
    ap.add_argument("--no-clap", action="store_true", help="skip the CLAP timing")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, torch {torch.__version__}, torch threads {args.threads}")
    rng = np.random.default_rng(args.seed)
    results = {}
    policies = ("auto", "settle", "fresh", "none")
    for reset in policies:
        rng = np.random.default_rng(args.seed)  # the same presets for every policy
        env = VitalMatchEnv(space="core", mode="one_shot", render={"reset": reset}, reward={"clap_weight": 0.0})
        vectors = [env.codec.canonical(env.space.sample(rng)) for _ in range(args.n)]
        results[reset] = bench_steps(env, vectors)
    exact = {reset: exactness(env, vectors, reset) for reset in ("auto", "settle", "none")}
    cfg = env.render_config
    print(
        f"config: core space, one-shot, note {cfg.midi_note}, {cfg.note_seconds} s held, {cfg.render_seconds} s rendered at {cfg.sample_rate} Hz, spectral reward only, {args.n} presets"
    )
    print()

    def row(label: str, key: str, fmt: str = ".1f") -> None:
        print(f"{label:<22}" + "".join(f"{results[r][key]:>14{fmt}}" for r in policies))

    print(f"{'median ms':<22}" + "".join(f"{'reset=' + r:>14}" for r in policies))
    row("raw render", "raw render")
    row("env.step", "env.step")
    for reset in policies:
        results[reset]["ratio"] = results[reset]["env.step"] / results[reset]["raw render"]
    row("ratio step / raw", "ratio", ".2f")
    print("breakdown of a step:")
    for key in ("encode", "synth reset", "apply preset", "render", "features", "reward"):
        row(f"  {key}", key)
    print(
        f"  (synth reset: auto = init values + a {cfg.settle_seconds} s settle render, or a new synth when the preset needs one; settle = init controls + the settle render, always; fresh = a new vita.Synth; none = nothing)"
    )
    for reset, (same, checked, new_synth) in exact.items():
        extra = f"; {new_synth} took the new-synth route" if reset == "auto" else ""
        print(f"reset={reset}: {same}/{checked} renders in sequence bit-identical to a new synth's (max abs diff < 1e-5{extra})")
    print("  (presets that turn on the sampler are left out of that count: vita's sampler is random)")
    if not args.no_clap:
        clap = bench_clap(cfg.sample_rate, cfg.render_seconds, repeats=5)
        print()
        print("CLAP term (laion-clap HTSAT-tiny, random weights, same architecture as the released checkpoint):")
        print(f"  model build {clap['build (s)']:.1f} s; per step {clap['per step']:.0f} ms; per batch of 8 {clap['per batch of 8']:.0f} ms")


if __name__ == "__main__":
    main()
