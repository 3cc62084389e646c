"""Targets: the sounds an agent must match.

* :class:`RandomPresetTargets` draws presets from a parameter space (seeded, with the space's priors) and
  re-draws until the render is audible and finite; its targets carry their true parameters.
* :class:`PresetFolderTargets` renders ``.vital`` files from a folder (recursively); parameters are known
  when a codec is given.
* :class:`AudioFolderTargets` reads wav/flac/ogg files (mono-mixed, resampled, trimmed or padded to the
  render length): the route for sounds no preset made, such as vocal imitations.

A file that cannot be used (invalid JSON, NaN values, unreadable audio, a silent render) is reported once
with a warning that names it and is skipped; only a folder with no usable file at all is an error.
"""

from __future__ import annotations

import abc
import copy
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vital_gym.audio import AUDIO_SUFFIXES, AudioFileError, load_audio
from vital_gym.params import ParameterSpace
from vital_gym.preset import Preset, PresetCodec, PresetError
from vital_gym.render import Renderer, RenderError, check_audio


class TargetError(ValueError):
    """No usable target could be found."""


@dataclass(frozen=True)
class Target:
    audio: np.ndarray  # (channels, samples) float32 at the renderer's sample rate
    name: str
    preset: Preset | None = None
    params: np.ndarray | None = None  # parameter vector in the env's space, when known


class TargetSource(Protocol):
    def sample(self, rng: np.random.Generator) -> Target: ...


class RandomPresetTargets:
    def __init__(self, space: ParameterSpace, codec: PresetCodec, renderer: Renderer, max_tries: int = 50):
        self.space, self.codec, self.renderer, self.max_tries = space, codec, renderer, max_tries

    def sample(self, rng: np.random.Generator) -> Target:
        for _ in range(self.max_tries):
            x = self.codec.canonical(self.space.sample(rng, prior=True))
            preset = self.codec.to_preset(x, name="random-target")
            result = self.renderer.render(preset)
            if result.status.ok:
                return Target(result.audio, "random-target", result.preset, x)
        raise TargetError(f"{self.max_tries} random presets of space '{self.space.name}' in a row rendered silent or non-finite; widen the space's priors")


class FolderTargets(abc.ABC):
    kind = "file"

    def __init__(self, folder: str | Path, suffixes: tuple[str, ...]):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise TargetError(f"target folder {self.folder} does not exist or is not a folder")
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        if not self.files:
            raise TargetError(f"target folder {self.folder} holds no {'/'.join(suffixes)} files")
        self._bad: dict[Path, str] = {}

    def __len__(self) -> int:
        return len(self.files)

    def split(self, held_out_every: int) -> tuple[FolderTargets, FolderTargets]:
        """Two views over disjoint files: every ``held_out_every``-th file (sorted order) is held out."""
        if held_out_every < 2 or len(self.files) < held_out_every:
            raise TargetError(f"cannot hold out every {held_out_every}th of the {len(self.files)} files in {self.folder}")
        train, held = copy.copy(self), copy.copy(self)
        train.files = [f for k, f in enumerate(self.files) if k % held_out_every != held_out_every - 1]
        held.files = [f for k, f in enumerate(self.files) if k % held_out_every == held_out_every - 1]
        train._bad, held._bad = {}, {}
        return train, held

    @abc.abstractmethod
    def load(self, path: Path) -> Target:
        """Read and render one file; raise a PresetError/AudioFileError/TargetError if it is unusable."""

    def sample(self, rng: np.random.Generator) -> Target:
        return self.get(int(rng.integers(len(self.files))))

    def get(self, index: int) -> Target:
        """Target ``index``, or the next usable one after it (bad files are skipped with a warning)."""
        for k in range(len(self.files)):
            path = self.files[(index + k) % len(self.files)]
            if path in self._bad:
                continue
            try:
                return self.load(path)
            except (PresetError, AudioFileError, RenderError, TargetError) as e:
                self._bad[path] = str(e)
                warnings.warn(f"skipping {self.kind} target {path}: {e}", stacklevel=2)
        problems = "; ".join(f"{p.name}: {why}" for p, why in list(self._bad.items())[:5])
        raise TargetError(f"no usable {self.kind} in {self.folder} ({problems})")


class PresetFolderTargets(FolderTargets):
    kind = "preset"

    def __init__(self, folder: str | Path, renderer: Renderer, codec: PresetCodec | None = None):
        super().__init__(folder, (".vital",))
        self.renderer, self.codec = renderer, codec

    def load(self, path: Path) -> Target:
        preset = Preset.load(path)
        result = self.renderer.render(preset)
        if not result.status.ok:
            raise TargetError(f"renders {result.status.describe()}")
        params = self.codec.from_preset(preset) if self.codec else None
        return Target(result.audio, path.stem, result.preset, params)


class AudioFolderTargets(FolderTargets):
    kind = "audio"

    def __init__(self, folder: str | Path, renderer: Renderer):
        super().__init__(folder, AUDIO_SUFFIXES)
        self.config = renderer.config

    def load(self, path: Path) -> Target:
        cfg = self.config
        audio = load_audio(path, cfg.sample_rate, cfg.num_samples, cfg.channels)
        status = check_audio(audio, cfg.silence_rms, cfg.clip_level)
        if status.silent:
            raise AudioFileError(f"{path}: silent (RMS {status.rms:.2e} after trimming to {cfg.render_seconds} s)")
        return Target(audio, path.stem)


def targets_spec(spec: Any) -> Any:
    """``"kind:DIR"`` strings as ``{"kind", "path"}`` dicts; other specs unchanged."""
    if isinstance(spec, str):
        kind, _, path = spec.partition(":")
        return {"kind": kind, "path": path or None}
    return spec


def make_targets(spec: Any, space: ParameterSpace, codec: PresetCodec, renderer: Renderer) -> TargetSource:
    """``"random"``, ``{"kind": "presets"|"audio", "path": DIR}``, ``"presets:DIR"``, ``"audio:DIR"``,
    or any object with ``sample(rng) -> Target``.

    A folder spec may add ``"held_out_every": n`` and ``"part": "train"`` or ``"held_out"`` to use one side
    of :meth:`FolderTargets.split` (a plain dict, so vector-env workers can build it themselves).
    """
    if hasattr(spec, "sample"):
        return spec
    spec = targets_spec(spec)
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ValueError(f"targets={spec!r}: use 'random', 'presets:DIR', 'audio:DIR' or a TargetSource")
    kind, path = spec["kind"], spec.get("path")
    if kind == "random":
        return RandomPresetTargets(space, codec, renderer)
    if kind in ("presets", "audio") and not path:
        raise ValueError(f"targets kind '{kind}' needs a folder path")
    if kind in ("presets", "audio"):
        folder = PresetFolderTargets(path, renderer, codec) if kind == "presets" else AudioFolderTargets(path, renderer)
        part = spec.get("part")
        if part is None:
            return folder
        if part not in ("train", "held_out"):
            raise ValueError(f"targets part {part!r}: 'train' or 'held_out'")
        train, held = folder.split(int(spec.get("held_out_every", 4)))
        return train if part == "train" else held
    raise ValueError(f"unknown targets kind {kind!r}: 'random', 'presets' or 'audio'")
