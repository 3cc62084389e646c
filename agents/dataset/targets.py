"""A dataset config's presets as env targets.

``VitalMatchEnv(targets="random")`` draws presets from the space's priors. The supervised model and the
benchmark's synthetic set draw them from a dataset config's mixture instead (uniform, archetypes such as
pad, lead, bass and pluck, perturbed human presets), so an agent trained on random targets learns on other
sounds than it is measured on. :class:`DatasetTargets` draws from that mixture for the env, played at the
env's note and velocity (the env plays every action there): ``vital-gym ppo --targets dataset:core``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from agents.dataset.generate import REJECT_REASONS, DatasetConfig, SampleMaker
from vital_gym.render import RenderConfig
from vital_gym.resources import find_config
from vital_gym.targets import Target

TARGETS_SEED = 0x7A9E7  # the presets' seed: no training dataset, nor the benchmark's test set, uses it


class DatasetTargets:
    """Presets drawn as ``config`` draws its samples, from :data:`TARGETS_SEED`, rendered with ``render``
    (the env's settings) at its note and velocity. Each ``sample(rng)`` draws a sample index from ``rng``, so
    the env's seed decides its targets. Picklable: a vector-env worker builds its own synth on first use.
    """

    def __init__(self, config: DatasetConfig | str | Path, render: RenderConfig | dict[str, Any] | None = None, seed: int = TARGETS_SEED):
        config = config if isinstance(config, DatasetConfig) else DatasetConfig.from_yaml(find_config("dataset", config))
        render = render if isinstance(render, RenderConfig) else RenderConfig.from_dict(render)
        self.config = dataclasses.replace(
            config,
            seed=seed,
            render=dataclasses.asdict(render),
            midi_notes=(render.midi_note,),
            velocity=(render.velocity, render.velocity),
            audio_sample_rate=None,
        )
        self._maker: SampleMaker | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maker": None}  # the maker holds a Vita synth

    @property
    def maker(self) -> SampleMaker:
        if self._maker is None:
            self._maker = SampleMaker(self.config)
        return self._maker

    def sample(self, rng: np.random.Generator) -> Target:
        maker = self.maker
        rejected = dict.fromkeys(REJECT_REASONS, 0)
        s = maker.render_audible(int(rng.integers(2**62)), rejected, name="dataset-target")
        return Target(s.result.audio, f"{maker.source_names[s.source]}-target", s.result.preset, s.x)
