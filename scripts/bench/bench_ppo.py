"""Environment steps per second in SubprocVecEnv with 1 and 2 workers, against the raw Vita render rate.

    HF_HUB_OFFLINE=1 python scripts/bench/bench_ppo.py --steps 60
    HF_HUB_OFFLINE=1 python scripts/bench/bench_ppo.py --steps 60 --ray   # and RayVecEnv (Ray started here)

One-shot ``VitalMatch-v0`` at its default config (core space, 2 s renders, spectral reward), random
actions, forkserver workers (SB3's default start method). The raw rate is ``vita.Synth.render`` alone on
one core over presets decoded from random actions of the same distribution. The ideal for N workers on N free cores is N x the raw rate; the gap
is the env's own cost (new synths, log-mel, reward; see scripts/bench/bench_env.py) and the IPC.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from stable_baselines3.common.vec_env import SubprocVecEnv

from vital_gym.envs import VitalMatchEnv


def make_env(rank: int):
    def make():
        import torch

        torch.set_num_threads(1)
        env = VitalMatchEnv()
        env.reset(seed=rank)
        return env

    return make


def raw_rate(n: int) -> float:
    import vita

    env = VitalMatchEnv()
    rng = np.random.default_rng(0)
    cfg = env.render_config
    seconds = 0.0
    for _ in range(n):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)  # as the env steps below
        preset = env.renderer.prepare(env.codec.to_preset(env.codec.canonical(env.space.action_to_vector(action))))
        synth = vita.Synth()
        synth.load_json(preset.to_json())
        t = time.perf_counter()
        synth.render(cfg.midi_note, cfg.velocity, cfg.note_seconds, cfg.render_seconds)
        seconds += time.perf_counter() - t
    return n / seconds


def steps_per_second(workers: int, steps: int, vec: str = "subproc") -> float:
    if vec == "ray":
        from agents.ppo.ray_vec_env import RayVecEnv

        venv = RayVecEnv([make_env(i) for i in range(workers)])
    else:
        venv = SubprocVecEnv([make_env(i) for i in range(workers)], start_method="forkserver")
    rng = np.random.default_rng(0)
    venv.reset()
    sample = lambda: np.stack([rng.uniform(-1, 1, venv.action_space.shape).astype(np.float32) for _ in range(workers)])  # noqa: E731
    for _ in range(3):  # warm-up
        venv.step(sample())
    t = time.perf_counter()
    for _ in range(steps // workers):
        venv.step(sample())
    rate = (steps // workers) * workers / (time.perf_counter() - t)
    venv.close()
    return rate


def main() -> None:
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--ray", action="store_true", help="also RayVecEnv, on a Ray instance started here with 2 CPUs")
    args = ap.parse_args()
    raw = raw_rate(args.steps // 2)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"raw vita render: {raw:.1f} renders/s on one core")
    for workers in (1, 2):
        rate = steps_per_second(workers, args.steps)
        print(f"SubprocVecEnv, {workers} worker(s): {rate:.1f} env steps/s = {rate / (workers * raw):.2f} x workers x raw rate")
    if args.ray:
        import ray

        ray.init(num_cpus=2, log_to_driver=False)
        for workers in (1, 2):
            rate = steps_per_second(workers, args.steps, vec="ray")
            print(f"RayVecEnv, {workers} worker(s): {rate:.1f} env steps/s = {rate / (workers * raw):.2f} x workers x raw rate")
        ray.shutdown()


if __name__ == "__main__":
    main()
