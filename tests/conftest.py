"""Shared fixtures: a tiny parameter space, short renders, the shared human presets, a random-weight CLAP."""

from __future__ import annotations

import os

# laion-clap and transformers retry the Hugging Face hub for minutes at import time without these.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vital_gym.params import ParameterSpace  # noqa: E402
from vital_gym.preset import PresetCodec  # noqa: E402
from vital_gym.render import RenderConfig, Renderer  # noqa: E402

SHARED_PRESETS = Path(__file__).resolve().parents[2] / "shared" / "presets"

TINY_SPACE = {
    "name": "tiny",
    "parameters": [
        "osc_1_on",  # toggle
        "osc_1_level",  # continuous, quadratic scale
        {"name": "osc_1_transpose", "low": -12, "high": 12},  # integer
        "osc_1_wave_frame",  # continuous
        "filter_1_on",
        "filter_1_model",  # categorical, 8 options
        "filter_1_cutoff",
        "env_1_attack",  # quartic scale
        "env_1_release",
        "lfo_1_shape",  # LFO shape preset
    ],
    "modulation": {"slots": 2, "sources": ["lfo_1", "env_2"], "destinations": ["filter_1_cutoff", "osc_1_wave_frame"]},
    "priors": {"osc_1_on": {"p_on": 1.0}, "osc_1_level": {"low": 0.6, "high": 1.0}},
}


@pytest.fixture(scope="session", autouse=True)
def cache_in_tmp(tmp_path_factory):
    """Caches the suite writes (the preset library's index) go to a temporary folder, never the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
        yield


@pytest.fixture(scope="session")
def tiny_space() -> ParameterSpace:
    return ParameterSpace.from_dict(TINY_SPACE)


@pytest.fixture(scope="session")
def core_space() -> ParameterSpace:
    return ParameterSpace.load("core")


@pytest.fixture(scope="session")
def studio_space() -> ParameterSpace:
    return ParameterSpace.load("studio")


@pytest.fixture(scope="session")
def studio_codec(studio_space) -> PresetCodec:
    return PresetCodec(studio_space)


@pytest.fixture(scope="session")
def tiny_codec(tiny_space) -> PresetCodec:
    return PresetCodec(tiny_space)


@pytest.fixture(scope="session")
def core_codec(core_space) -> PresetCodec:
    return PresetCodec(core_space)


@pytest.fixture
def short_render() -> RenderConfig:
    """A quarter-second note in a half-second render: fast, and long enough to hear the release."""
    return RenderConfig(note_seconds=0.25, render_seconds=0.5)


@pytest.fixture
def renderer(short_render) -> Renderer:
    return Renderer(short_render)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def human_presets() -> list[Path]:
    files = sorted(SHARED_PRESETS.rglob("*.vital")) if SHARED_PRESETS.is_dir() else []
    if not files:
        pytest.skip(f"no human presets at {SHARED_PRESETS} (a user's clone has no ../shared)")
    return files


@pytest.fixture(scope="session")
def random_clap():
    """LAION-CLAP's real HTSAT-tiny architecture with random weights (no download): plumbing, never scores."""
    from vital_gym.rewards import ClapEmbedder, RewardConfig

    return ClapEmbedder.from_config(RewardConfig(clap_weight=1.0, clap_checkpoint="random"), device="cpu")
