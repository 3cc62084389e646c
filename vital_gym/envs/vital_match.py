"""``VitalMatch-v0``: find the Vital preset that recreates a target sound."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import yaml
from gymnasium import spaces

from vital_gym.features import MelConfig, spectrogram
from vital_gym.params import Kind, ParameterSpace
from vital_gym.preset import PresetCodec
from vital_gym.render import RenderConfig, Renderer
from vital_gym.resources import find_config
from vital_gym.rewards import ClapEmbedder, Reward, RewardConfig
from vital_gym.targets import Target, TargetSource, make_targets


class VitalMatchEnv(gym.Env):
    """Match a target sound with a Vital preset, rendered by Vital's own engine through ``vita``.

    ## Action space
    ``Box(-1, 1, (D,), float32)``, the space's action encoding (:attr:`ParameterSpace.layout` names
    every slice): a continuous or integer parameter takes one dimension (mapped linearly onto its range,
    integers rounded); an on/off parameter one dimension (on when > 0); a categorical parameter with k
    options k dimensions (the argmax wins). Values outside [-1, 1] are clipped; NaN or Inf raise
    ``ValueError``. In refine mode with ``refine_action="delta"`` the continuous and integer dimensions are
    changes to the current parameters (scaled by ``delta_scale``), and a categorical or on/off block only
    changes its parameter when its largest entry is above 0.5 (on/off: above 0.5 on, below -0.5 off).

    ## Observation space
    One-shot: the target's log-mel spectrogram, ``Box(0, 1, (1, n_mels, frames), float32)`` (0 is
    ``top_db`` below full scale, 1 is full scale; with ``observation={"frontend": "audiomae"}``, AudioMAE's
    filterbank at 100 frames per second, see :mod:`vital_gym.features`). Refine: a ``Dict`` with ``target`` and ``current`` (the
    same spectrogram of the target and of the current preset's render) and ``params``, the current
    parameter vector in ``[0, 1]^P``.

    ## Reward
    ``score = clap_weight * CLAP similarity - spectral_weight * multi-resolution STFT distance`` (see
    :mod:`vital_gym.rewards`). One-shot: the score of the render; with ``start``, the score's improvement
    over the start's render (a per-target baseline: e.g. the supervised model's own choice). Refine: the
    score's improvement over the previous step (the episode starts from ``start``'s preset, by default the
    base preset, Vital's init preset unless the space names another). With a start, ``reset``'s info holds
    the start's terms and ``params``.
    ``info`` holds every term, the rendered preset (``info["preset"]``, a :class:`Preset` that
    ``.save()`` writes as a ``.vital``), its parameter vector, the render's status, and with
    ``return_audio=True`` the audio.

    ## Episode end
    One-shot: after one step (terminated). Refine: terminated when the spectral distance falls below
    ``success_distance``; truncated after ``max_steps`` steps.

    ## Arguments
    * ``space``: a parameter space name (``"core"``, ``"full"``), a YAML path, or a ``ParameterSpace``.
    * ``targets``: ``"random"`` (presets drawn from the space), ``"presets:DIR"`` (``.vital`` files),
      ``"audio:DIR"`` (wav/flac/ogg), or a ``TargetSource``.
    * ``mode``: ``"one_shot"`` or ``"refine"``; ``max_steps``, ``refine_action``, ``delta_scale``,
      ``success_distance`` for refine episodes; ``start``: a callable that gives a parameter vector
      from each episode's :class:`~vital_gym.targets.Target` (e.g. a trained matcher's choice,
      :class:`agents.ppo.start.MatcherStart`): a refine episode's first preset (None: the base preset), a
      one-shot episode's reference score (None: the reward is the score itself). One render more per
      one-shot episode.
    * ``reward``: :class:`RewardConfig` fields (weights, FFT sizes, CLAP checkpoint).
    * ``render``: :class:`RenderConfig` fields (note, velocity, lengths, sample rate, channels, phase,
      reset policy); ``observation``: :class:`MelConfig` fields.
    * ``return_audio``: put the rendered audio in ``info["audio"]``.
    * ``render_mode``: ``"rgb_array"`` returns target and current spectrograms as an image.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        space: str | Path | ParameterSpace = "core",
        targets: Any = "random",
        mode: Literal["one_shot", "refine"] = "one_shot",
        max_steps: int = 16,
        refine_action: Literal["absolute", "delta"] = "absolute",
        delta_scale: float = 0.1,
        success_distance: float = 0.3,
        reward: dict[str, Any] | RewardConfig | None = None,
        render: dict[str, Any] | RenderConfig | None = None,
        observation: dict[str, Any] | MelConfig | None = None,
        return_audio: bool = False,
        render_mode: str | None = None,
        clap: ClapEmbedder | None = None,
        start: Callable[[Target], np.ndarray] | None = None,
    ):
        if mode not in ("one_shot", "refine"):
            raise ValueError(f"mode={mode!r}: use 'one_shot' or 'refine'")
        if refine_action not in ("absolute", "delta"):
            raise ValueError(f"refine_action={refine_action!r}: use 'absolute' or 'delta'")
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps} must be >= 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: supported {self.metadata['render_modes']}")
        self.space = space if isinstance(space, ParameterSpace) else ParameterSpace.load(space)
        self.codec = PresetCodec(self.space)
        self.render_config = render if isinstance(render, RenderConfig) else RenderConfig.from_dict(render)
        self.reward_config = reward if isinstance(reward, RewardConfig) else RewardConfig.from_dict(reward)
        self.mel_config = observation if isinstance(observation, MelConfig) else MelConfig.from_dict(observation)
        self.mode, self.max_steps = mode, max_steps
        self.refine_action, self.delta_scale = refine_action, float(delta_scale)
        self.success_distance = float(success_distance)
        self.return_audio, self.render_mode = return_audio, render_mode
        self.start = start

        self.renderer = Renderer(self.render_config)
        self.features = spectrogram(self.mel_config, self.render_config.sample_rate)
        self.reward_fn = Reward(self.reward_config, self.render_config.sample_rate, clap=clap)
        self.targets: TargetSource = make_targets(targets, self.space, self.codec, self.renderer)

        self.action_space = spaces.Box(-1.0, 1.0, (self.space.action_dim,), dtype=np.float32)
        frames = self.mel_config.num_frames(self.render_config.num_samples, self.render_config.sample_rate)
        mel_box = spaces.Box(0.0, 1.0, (1, self.mel_config.n_mels, frames), dtype=np.float32)
        if mode == "one_shot":
            self.observation_space = mel_box
        else:
            self.observation_space = spaces.Dict(
                {
                    "target": mel_box,
                    "current": mel_box,
                    "params": spaces.Box(0.0, 1.0, (len(self.space),), dtype=np.float32),
                }
            )

        self.target: Target | None = None
        self._target_mel: np.ndarray | None = None
        self._current_mel: np.ndarray | None = None
        self._params: np.ndarray | None = None
        self._score = 0.0
        self._steps = 0

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.target = self.targets.sample(self.np_random)
        self.reward_fn.set_target(self.target.audio)
        self._target_mel = self.features(self.target.audio)[None]
        self._steps = 0
        info: dict[str, Any] = {"target": self.target.name}
        if self.target.params is not None:
            info["target_params"] = self.target.params.copy()
        if self.mode == "refine" or self.start is not None:
            start = self.codec.from_preset(self.codec.base) if self.start is None else self.start(self.target)
            self._params = self.codec.canonical(self.space.check_vector(start, "the start's parameter vector"))
            result, terms = self._evaluate(self._params)
            self._score = terms.score
            info.update(terms.as_info(), params=self._params.copy())
        return self._observation(), info

    def step(self, action: np.ndarray):
        if self.target is None:
            raise RuntimeError("call reset() before step()")
        params = self._decode(action)
        result, terms = self._evaluate(params)
        self._steps += 1
        if self.mode == "one_shot":
            reward = terms.score if self.start is None else terms.score - self._score
            terminated, truncated = True, False
        else:
            reward, self._score = terms.score - self._score, terms.score
            terminated = terms.spectral_distance < self.success_distance
            truncated = not terminated and self._steps >= self.max_steps
        self._params = params
        info = terms.as_info()
        info.update(
            params=params.copy(),
            preset=result.preset,
            render_status=result.status.describe(),
            clipped=result.status.clipped,
            silent=result.status.silent,
        )
        if self.return_audio:
            info["audio"] = result.audio.copy()
        return self._observation(), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._target_mel is None:
            return None
        panels = [self._target_mel[0]]
        if self._current_mel is not None:
            panels.append(self._current_mel[0])
        return spectrogram_image(panels)

    # ------------------------------------------------------------------ helpers
    def _decode(self, action: np.ndarray) -> np.ndarray:
        if self.mode == "refine" and self.refine_action == "delta":
            return self._apply_delta(action)
        return self.codec.canonical(self.space.action_to_vector(action))

    def _apply_delta(self, action: np.ndarray) -> np.ndarray:
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (self.space.action_dim,):
            raise ValueError(f"action has shape {a.shape}; expected ({self.space.action_dim},)")
        if not np.all(np.isfinite(a)):
            raise ValueError("action has NaN/Inf entries")
        a = np.clip(a, -1.0, 1.0)
        x = self._params.copy()
        for i, (p, s) in enumerate(zip(self.space.parameters, self.space.layout)):
            block = a[s.slice]
            if p.kind is Kind.CATEGORICAL:
                if block.max() > 0.5:
                    x[i] = int(np.argmax(block)) / max(p.n_values - 1, 1)
            elif p.kind is Kind.TOGGLE:
                x[i] = 1.0 if block[0] > 0.5 else 0.0 if block[0] < -0.5 else x[i]
            else:
                x[i] = np.clip(x[i] + self.delta_scale * block[0], 0.0, 1.0)
        return self.codec.canonical(x)

    def _evaluate(self, params: np.ndarray):
        result = self.renderer.render(self.codec.to_preset(params))
        self._current_mel = self.features(result.audio)[None]
        return result, self.reward_fn(result.audio)

    def _observation(self):
        if self.mode == "one_shot":
            return self._target_mel.copy()
        return {
            "target": self._target_mel.copy(),
            "current": self._current_mel.copy(),
            "params": self._params.astype(np.float32).copy(),
        }


def spectrogram_image(panels: list[np.ndarray], height: int = 128) -> np.ndarray:
    """Spectrograms in [0, 1] side by side (low frequencies at the bottom) as an RGB uint8 image."""
    columns = []
    for mel in panels:
        img = np.flipud(np.clip(mel, 0.0, 1.0))
        rows = np.linspace(0, img.shape[0] - 1, height).astype(int)
        columns.append(img[rows])
        columns.append(np.ones((height, 2), dtype=np.float32))
    v = np.concatenate(columns[:-1], axis=1)
    # A perceptual dark-blue -> teal -> yellow ramp (viridis-like), interpolated on three anchors.
    anchors = np.array([[68, 1, 84], [33, 145, 140], [253, 231, 37]], dtype=np.float32)
    pos = v * (len(anchors) - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, len(anchors) - 2)
    frac = (pos - lo)[..., None]
    rgb = anchors[lo] * (1 - frac) + anchors[lo + 1] * frac
    return rgb.astype(np.uint8)


def load_env_config(name_or_path: str | Path) -> dict[str, Any]:
    """Keyword arguments for ``gym.make("VitalMatch-v0", **kwargs)`` from a shipped env config by name
    (``one_shot``, ``refine``) or a YAML file path."""
    path = find_config("env", name_or_path)
    with path.open() as f:
        kwargs = yaml.safe_load(f) or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{path}: an env config is a YAML mapping of VitalMatchEnv arguments")
    return kwargs
