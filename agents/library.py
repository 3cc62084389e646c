"""A library of Vital presets as match candidates, indexed by how they sound.

A sound designer's own preset folder often holds something close to a target, with the wavetables, effects
and modulation that no parameter space of the model covers. :class:`PresetLibrary` indexes such folders:
every ``.vital`` file (recursively) is rendered at ``INDEX_NOTES`` and each render's log-mel, quantised as
datasets store it and average-pooled (:func:`~vital_gym.features.pool_logmel`, the features nearest
neighbour compares), is kept. :meth:`PresetLibrary.shortlist` then names the presets whose sound at the
indexed note nearest the target's is closest to the target's; ``vital-gym match`` renders those at the
target's own note beside the model's candidates and keeps the closest of all.

Indexing renders each preset a few times, and a preset with an audio-file wavetable is slow to load, so
each file's features are cached on disk under ``cache_dir`` (default ``$XDG_CACHE_HOME/vital-gym/library``,
else ``~/.cache/vital-gym/library``), keyed by the file's SHA-256 and the render and log-mel settings: a
library is indexed once, and afterwards only new or changed files are. A file that cannot be read or that
renders silence or garbage is left out with a warning that names it.

The package ships a default library (``shipped_library_dir()``): presets whose licences allow it (CC BY
4.0 and CC0; ``NOTICE.md`` there names their authors).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from agents.dataset.shards import dequantise, quantise
from vital_gym.features import NEIGHBOUR_POOL, MelConfig, pool_logmel, spectrogram
from vital_gym.preset import Preset, PresetError
from vital_gym.render import RenderConfig, Renderer, RenderError, side_by_side

INDEX_NOTES = (48, 60, 72)  # the notes every library preset is indexed at; a target uses the nearest
DEFAULT_SHORTLIST = 16  # library presets rendered at the target's note beside the model's candidates (docs/experiments.md)


def pooled_features(mel, audio: np.ndarray, pool: tuple[int, int] = NEIGHBOUR_POOL) -> torch.Tensor:
    """``(channels, samples)`` audio -> the ``(D,)`` features a search by sound compares: its log-mel
    (``mel``, a :func:`~vital_gym.features.spectrogram`) quantised as datasets store it, then pooled."""
    return pool_logmel(torch.from_numpy(dequantise(quantise(mel(audio))))[None], pool)[0]


def shipped_library_dir() -> Path:
    """The presets installed with the package (licensed for it; see ``NOTICE.md`` there)."""
    return Path(str(files("agents").joinpath("library")))


def default_cache_dir() -> Path:
    """Where library indexes are cached: ``$XDG_CACHE_HOME/vital-gym/library`` or ``~/.cache/vital-gym/library``."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "vital-gym" / "library"


@dataclass(frozen=True)
class LibraryEntry:
    """One indexed preset: its file, the preset, and its features ``(len(INDEX_NOTES), D)``."""

    path: Path
    preset: Preset
    features: np.ndarray

    @property
    def name(self) -> str:
        return self.path.stem


class PresetLibrary:
    """Indexed presets (:meth:`index` builds one) that :meth:`shortlist` searches by sound."""

    def __init__(self, entries: Sequence[LibraryEntry], render: RenderConfig, observation: MelConfig):
        if not entries:
            raise ValueError("a preset library needs at least one usable preset")
        self.entries = list(entries)
        self.render = render
        self.mel = spectrogram(observation, render.sample_rate)
        self._features = torch.from_numpy(np.stack([e.features for e in self.entries]))  # (N, notes, D)

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def index(
        cls,
        folders: Iterable[str | Path],
        render: RenderConfig,
        observation: MelConfig,
        cache_dir: str | Path | None = None,
        workers: int = 1,
        progress: bool = False,
    ) -> PresetLibrary:
        """Index every ``.vital`` file under ``folders`` (recursively; the same file once), reading each
        file's features from the cache where they are, rendering them (on ``workers`` threads) where not.

        Raises FileNotFoundError for a folder that does not exist, ValueError when no file is usable."""
        paths: dict[Path, None] = {}
        for folder in map(Path, folders):
            if not folder.is_dir():
                raise FileNotFoundError(f"preset library {folder}: no such folder")
            paths.update(dict.fromkeys(sorted(p.resolve() for p in folder.rglob("*.vital") if p.is_file())))
        if not paths:
            raise ValueError(f"preset library {', '.join(map(str, folders))}: no .vital files")
        mel = spectrogram(observation, render.sample_rate)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        settings = hashlib.sha256(
            json.dumps({"render": dataclasses.asdict(render), "observation": dataclasses.asdict(observation), "notes": INDEX_NOTES}, sort_keys=True).encode()
        ).hexdigest()[:16]
        cache_folder = cache / settings
        loaded: list[tuple[Path, Preset, Path]] = []
        for path in paths:
            try:
                data = path.read_bytes()
                preset = Preset.from_json(data, name=path.stem)
            except (OSError, PresetError) as e:
                warnings.warn(f"preset library: {path} left out: {e}", stacklevel=2)
                continue
            loaded.append((path, preset, cache_folder / f"{hashlib.sha256(data).hexdigest()}.npy"))
        todo = [item for item in loaded if not item[2].is_file()]
        if todo:
            cache_folder.mkdir(parents=True, exist_ok=True)
            renderers = [Renderer(dataclasses.replace(render, reset="fresh")) for _ in range(max(1, workers))]
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="preset", desc="indexing the preset library", disable=not progress)

            def one(renderer: Renderer, item: tuple[Path, Preset, Path]) -> None:
                path, preset, cached = item
                try:
                    features = _features(renderer, preset, mel)
                except (RenderError, ValueError) as e:
                    warnings.warn(f"preset library: {path} left out: {e}", stacklevel=2)
                    features = None
                tmp = cached.with_name(f".tmp-{cached.name}")  # a cut-short write is never read
                np.save(tmp, np.zeros((0,), np.float32) if features is None else features)
                os.replace(tmp, cached)
                bar.update(1)

            side_by_side(renderers, todo, one)
            bar.close()
        entries = []
        for path, preset, cached in loaded:
            features = np.load(cached)
            if features.size:  # empty: a preset that did not render usably, remembered as such
                entries.append(LibraryEntry(path, preset, features))
        if not entries:
            raise ValueError(f"preset library {', '.join(map(str, folders))}: no preset renders usably")
        return cls(entries, render, observation)

    def shortlist(self, target: np.ndarray, midi_note: int, k: int = DEFAULT_SHORTLIST) -> list[LibraryEntry]:
        """The ``k`` presets whose sound at the indexed note nearest ``midi_note`` is closest to ``target``
        ``(channels, samples)``, closest first."""
        column = int(np.argmin([abs(n - midi_note) for n in INDEX_NOTES]))
        distances = torch.cdist(pooled_features(self.mel, target)[None], self._features[:, column])[0]
        return [self.entries[i] for i in distances.argsort()[:k].tolist()]


def _features(renderer: Renderer, preset: Preset, mel) -> np.ndarray:
    """``(len(INDEX_NOTES), D)`` pooled log-mel features of ``preset`` rendered at each index note.

    Raises ValueError for a render that is silent or not finite: no target could be matched by it."""
    rows = []
    for note in INDEX_NOTES:
        rendered = renderer.render(preset, note)
        if not rendered.status.ok:
            raise ValueError(f"its render at note {note} is {rendered.status.describe()}")
        rows.append(pooled_features(mel, rendered.audio).numpy())
    return np.stack(rows).astype(np.float32)
