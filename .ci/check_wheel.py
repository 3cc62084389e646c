"""Use an installed vital-gym wheel as a new user would, from outside the repository.

Run by .ci/run with the python of a fresh virtual environment that holds the wheel and its core
dependencies only (no extras). Checks that the package finds its own configs and shipped model, that the
environment steps, that `vital-gym match` turns a generated wav into a .vital, and that a command needing an
extra says how to install it.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import soundfile as sf

import vital_gym  # noqa: F401 - registers VitalMatch-v0

here = Path.cwd()
assert not (here / "vital_gym").exists(), "run this outside the repository"
print("vital_gym from", Path(vital_gym.__file__).parent)

env = gym.make("VitalMatch-v0", space="core")
obs, info = env.reset(seed=0)
obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
assert np.isfinite(reward) and terminated, (reward, terminated)
info["preset"].save(here / "random.vital")
print(f"VitalMatch-v0: one step, reward {reward:.3f}")

t = np.arange(2 * 44100) / 44100
sf.write(here / "hum.wav", (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-t)).astype(np.float32), 44100)
cli = Path(sys.executable).with_name("vital-gym")
subprocess.run([cli, "--help"], check=True, capture_output=True)
subprocess.run([cli, "match", "hum.wav", "-o", "matched.vital"], check=True)
assert all((here / f"matched.{suffix}").is_file() for suffix in ("vital", "wav", "png"))

import vita  # noqa: E402

assert vita.Synth().load_preset(str(here / "matched.vital")), "the matched preset does not load in Vita"

if importlib.util.find_spec("stable_baselines3") is None:  # the core install: training extras absent
    run = subprocess.run([cli, "ppo", "--steps", "1"], capture_output=True, text=True)
    assert run.returncode == 2 and "vital-gym[train]" in run.stderr, run.stderr
print("the installed wheel works")
