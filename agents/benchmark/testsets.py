"""The benchmark's fixed test sets, regenerated from their seeds and folders on every run.

* ``synthetic``: held-out random presets of a parameter space, drawn the way training data is drawn
  (the dataset config's uniform and archetype mixture, pitches and velocities) but from a seed reserved
  for testing (:data:`TEST_SEED`); :class:`~agents.benchmark.methods.NearestNeighbour` refuses a dataset
  generated with that seed, so a test preset is never in the training data.
* ``human``: a folder of ``.vital`` files (e.g. ``../shared/presets``), each rendered at a fixed note.
* ``voice``: a folder of audio files (vocal imitations, or the espeak-ng set of
  ``vital-gym dataset voice``); the note every method renders at is the clip's estimated pitch (YIN).

Every item keeps the note and velocity it was rendered at, so every method's output is rendered with
the same settings as its target.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from agents.dataset.generate import REJECT_REASONS, DatasetConfig, SampleMaker
from vital_gym.audio import AUDIO_SUFFIXES, AudioFileError, estimate_midi_note
from vital_gym.params import ParameterSpace
from vital_gym.preset import Preset, PresetCodec, PresetError
from vital_gym.render import RenderConfig, Renderer, RenderError
from vital_gym.targets import AudioFolderTargets, FolderTargets, PresetFolderTargets, Target, TargetError

TEST_SEED = 0x7E57  # the synthetic test set's seed; training datasets must use another one
DEV_SEED = 0xDE7  # development targets (scripts/bench/eval_draws.py): choose settings on these, not the test set
SET_KINDS = ("synthetic", "human", "voice")


@dataclass(frozen=True)
class TestItem:
    """One target: audio ``(1, samples)`` float32 at the render rate, and what is known about it."""

    __test__ = False  # not a pytest class, whatever its name

    set: str
    name: str
    audio: np.ndarray
    midi_note: int
    velocity: float
    params: np.ndarray | None = None  # the true parameter vector in the benchmark's space, when known
    preset: Preset | None = None  # the true preset, when known
    path: Path | None = None  # the file it came from
    source: str = ""  # a synthetic item's dataset source (e.g. "uniform", "pad"); "" for the other sets


def synthetic_set(space: ParameterSpace, dataset_config: DatasetConfig, n: int, seed: int = TEST_SEED) -> list[TestItem]:
    """``n`` audible, unclipped renders of presets drawn like ``dataset_config``'s, from ``seed``."""
    config = replace(dataset_config, seed=seed, audio_sample_rate=None)
    maker = SampleMaker(config)
    if maker.space.fingerprint != space.fingerprint:
        raise ValueError(f"the dataset config's space '{maker.space.name}' is not the benchmark's '{space.name}'")
    rejected = dict.fromkeys(REJECT_REASONS, 0)
    items = []
    for k in range(n):
        name = f"synthetic-{k:04d}"
        s = maker.render_audible(k, rejected, name=name)
        items.append(TestItem("synthetic", name, s.result.audio, s.note, s.velocity, s.x, s.result.preset, source=maker.source_names[s.source]))
    return items


def _usable(set_name: str, source: FolderTargets) -> Iterator[tuple[Path, Target]]:
    """Each file of ``source`` that loads (the env's own loading and checks), the others warned about."""
    for path in source.files:
        try:
            yield path, source.load(path)
        except (PresetError, AudioFileError, RenderError, TargetError) as e:
            warnings.warn(f"{set_name} test set: skipping {path}: {e}", stacklevel=3)


def _folder(set_name: str, kind: type[FolderTargets], folder: str | Path, *args: object) -> FolderTargets:
    try:
        return kind(folder, *args)
    except TargetError as e:
        suffixes = ".vital" if kind is PresetFolderTargets else "/".join(AUDIO_SUFFIXES)
        raise FileNotFoundError(f"{set_name} test set: no {suffixes} files in {folder} ({e})") from None


def preset_set(folder: str | Path, space: ParameterSpace, render: RenderConfig, limit: int | None = None) -> list[TestItem]:
    """Every usable ``.vital`` file under ``folder`` rendered at ``render``'s note and velocity.

    Files that do not load or render silent are skipped with a warning that names them.
    """
    source = _folder("human", PresetFolderTargets, folder, Renderer(render), PresetCodec(space))
    source.files = source.files[:limit]
    return [TestItem("human", t.name, t.audio, render.midi_note, render.velocity, t.params, t.preset, path) for path, t in _usable("human", source)]


def audio_set(folder: str | Path, render: RenderConfig, limit: int | None = None) -> list[TestItem]:
    """Every usable audio file under ``folder``, fitted to the render length; the note is its pitch."""
    source = _folder("voice", AudioFolderTargets, folder, Renderer(render))
    source.files = source.files[:limit]
    return [
        TestItem("voice", t.name, t.audio, estimate_midi_note(t.audio, render.sample_rate, render.midi_note), render.velocity, path=path)
        for path, t in _usable("voice", source)
    ]
