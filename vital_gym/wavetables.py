"""Wavetable banks: the wavetables a parameter space lets each oscillator choose from.

Vital keeps an oscillator's wavetable inside the preset (``settings["wavetables"][i]``) as a small program:
groups of components, each a source (``Wave Source``: key frames of one waveform period; ``Audio File
Source``: a sound file cut into windows; ``Line Source``, ...) followed by modifiers. Loading a preset
makes Vital rebuild every table: 257 frames, each turned into a band-limited spectrum. The rebuild is
what costs: an ``Audio File Source`` table takes several times the render of a note to load, a ``Wave
Source`` with a few key frames a fraction of it, and one with a single key frame almost nothing
(``scripts/bench/bench_wavetables.py`` measures it; docs/rendering.md).

So a :class:`WavetableBank` holds every table in one cheap, uniform form, converted once: one key frame,
or :data:`MAX_KEYFRAMES` key frames of :data:`FRAME_SIZE` samples spread evenly over Vital's 257 frame
positions, DC removed and peak-normalised. Vital plays them without interpolation (a frame position
between two key frames plays the earlier one): Vital then builds only the key frames, where a crossfade
would make it build all 257, which costs about three times as much to load. :meth:`Wavetable.to_vital`
writes that form as a ``Wave Source`` table, so a saved ``.vital`` opens in Vital with exactly the sound
that was rendered. A bank is a ``.npz`` file (``names``, ``sources``, ``frames`` float16 of shape
``(N, MAX_KEYFRAMES, FRAME_SIZE)``, ``keyframes`` per table); the shipped ``studio`` bank is
``configs/wavetables/studio.npz``: tables generated here (:func:`generated_wavetables`) and the CC0
tables of ``configs/wavetables/NOTICE.md``. ``vital-gym wavetables build`` makes one from any folder of
``.vitaltable`` files.

A preset's own table maps to the bank's nearest entry by sound (:meth:`WavetableBank.nearest`: the
harmonic spectra of five frames across the table); ``Wave Source`` and ``Audio File Source`` tables are
read, the other sources (and modifiers) are not rendered here, so such a table maps to the bank's first
entry.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vital_gym.files import atomic_file

FRAME_SIZE = 2048  # samples in one of Vital's wavetable frames (one period)
VITAL_POSITIONS = 256  # a key frame's position is 0..256 (257 frames)
MAX_KEYFRAMES = 16
FEATURE_POSITIONS = (0, 64, 128, 192, 256)
FEATURE_HARMONICS = 48


class WavetableError(ValueError):
    """A wavetable that cannot be read: names the table and what is wrong."""


@dataclasses.dataclass(frozen=True, eq=False)
class Wavetable:
    """One table: ``frames`` of shape ``(K, FRAME_SIZE)`` float32, key frame ``k`` at Vital position
    ``round(k * 256 / (K - 1))`` (a single frame stands for the whole table)."""

    name: str
    frames: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        f = np.asarray(self.frames, dtype=np.float32)
        if f.ndim != 2 or f.shape[1] != FRAME_SIZE or not 1 <= f.shape[0] <= MAX_KEYFRAMES:
            raise WavetableError(f"{self.name}: frames must have shape (1..{MAX_KEYFRAMES}, {FRAME_SIZE}), got {f.shape}")
        if not np.all(np.isfinite(f)):
            raise WavetableError(f"{self.name}: frames hold NaN/Inf")
        object.__setattr__(self, "frames", f)

    @property
    def positions(self) -> list[int]:
        return _even_positions(len(self.frames))

    def to_vital(self) -> dict[str, Any]:
        """The table as Vital stores it in ``settings["wavetables"][i]`` (a ``Wave Source``)."""
        keyframes = [{"position": p, "wave_data": base64.b64encode(f.astype("<f4").tobytes()).decode()} for p, f in zip(self.positions, self.frames)]
        return {
            "author": "",
            "full_normalize": True,
            "groups": [{"components": [{"interpolation": 0, "interpolation_style": 0, "keyframes": keyframes, "type": "Wave Source"}]}],
            "name": self.name,
            "remove_all_dc": True,
            "version": "1.0.6",
        }

    def frame_at(self, position: float) -> np.ndarray:
        """The waveform Vital plays at position 0..256: the last key frame at or before it."""
        return self.frames[int(np.searchsorted(self.positions, position, side="right")) - 1]

    @functools.cached_property
    def features(self) -> np.ndarray:
        """What :meth:`WavetableBank.nearest` compares: log harmonic magnitudes at five positions, (5 * 48,)."""
        frames = np.stack([self.frame_at(p) for p in FEATURE_POSITIONS])
        mags = np.abs(np.fft.rfft(frames, axis=1))[:, 1 : FEATURE_HARMONICS + 1]
        mags /= np.maximum(mags.max(axis=1, keepdims=True), 1e-9)
        return np.log10(mags + 1e-3).ravel().astype(np.float32)

    @classmethod
    def from_vital(cls, data: Mapping[str, Any], name: str = "") -> Wavetable:
        """Read a table as Vital stores it (a ``.vitaltable`` file, or a preset's ``wavetables`` entry).

        The first group's source is read: ``Wave Source`` key frames, or an ``Audio File Source``'s windows
        at its key frames' start positions. Raises :class:`WavetableError` for other sources."""
        name = name or str(data.get("name", "wavetable"))
        try:
            component = data["groups"][0]["components"][0]
            kind = component["type"]
        except (KeyError, IndexError, TypeError):
            raise WavetableError(f"{name}: not a Vital wavetable (no groups[0].components[0].type)") from None
        if kind == "Wave Source":
            positions, frames = _wave_source_frames(component, name)
        elif kind == "Audio File Source":
            positions, frames = _audio_file_frames(component, name)
        else:
            raise WavetableError(f"{name}: a {kind!r} table is not read (only Wave Source and Audio File Source)")
        return cls.from_frames(name, positions, frames)

    @classmethod
    def from_frames(cls, name: str, positions: Sequence[float], frames: np.ndarray, source: str = "") -> Wavetable:
        """A table from waveforms at Vital positions: resampled to at most :data:`MAX_KEYFRAMES` even key
        frames (one, if every frame is the same), DC removed, peak-normalised."""
        positions = np.asarray(positions, dtype=float)
        frames = np.asarray(frames, dtype=np.float64)
        if np.allclose(frames, frames[:1], atol=1e-6):
            keys = frames[:1]
        elif len(frames) == MAX_KEYFRAMES and np.array_equal(positions, _even_positions(MAX_KEYFRAMES)):
            keys = frames  # already in the bank's form (a table this module wrote)
        else:
            keys = np.stack([_interpolate(positions, frames, p) for p in np.linspace(0.0, VITAL_POSITIONS, MAX_KEYFRAMES)])
        keys = keys - keys.mean(axis=1, keepdims=True)
        peak = np.max(np.abs(keys))
        if not np.isfinite(peak) or peak < 1e-9:
            raise WavetableError(f"{name}: the table is silent")
        return cls(name=name, frames=(keys / peak).astype(np.float32), source=source)


def _even_positions(k: int) -> list[int]:
    """Vital positions of ``k`` key frames spread evenly over 0..256."""
    return [0] if k == 1 else [int(round(i * VITAL_POSITIONS / (k - 1))) for i in range(k)]


def _interpolate(positions: np.ndarray, frames: np.ndarray, position: float) -> np.ndarray:
    if len(frames) == 1:
        return np.asarray(frames[0])
    i = int(np.clip(np.searchsorted(positions, position, side="right") - 1, 0, len(frames) - 2))
    span = positions[i + 1] - positions[i]
    t = 0.0 if span <= 0 else float(np.clip((position - positions[i]) / span, 0.0, 1.0))
    return (1.0 - t) * frames[i] + t * frames[i + 1]


def _decode(text: Any, dtype: str, name: str) -> np.ndarray:
    """Base64 samples: a Wave Source key frame holds float32, an Audio File Source 16-bit PCM."""
    try:
        samples = np.frombuffer(base64.b64decode(text, validate=True), dtype=dtype)
    except (binascii.Error, ValueError, TypeError):
        raise WavetableError(f"{name}: wave data is not base64 {np.dtype(dtype).name}") from None
    return samples.astype(np.float32) / (32768.0 if samples.dtype.kind == "i" else 1.0)


def _wave_source_frames(component: Mapping[str, Any], name: str) -> tuple[list[float], np.ndarray]:
    keyframes = sorted(component.get("keyframes") or [], key=lambda k: k.get("position", 0))
    if not keyframes:
        raise WavetableError(f"{name}: a Wave Source without key frames")
    frames = []
    for k in keyframes:
        wave = _decode(k.get("wave_data", ""), "<f4", name)
        if wave.size != FRAME_SIZE:
            raise WavetableError(f"{name}: a key frame holds {wave.size} samples, not {FRAME_SIZE}")
        frames.append(wave)
    return [float(k.get("position", 0)) for k in keyframes], np.stack(frames)


def _audio_file_frames(component: Mapping[str, Any], name: str) -> tuple[list[float], np.ndarray]:
    audio = _decode(component.get("audio_file", ""), "<i2", name)
    keyframes = sorted(component.get("keyframes") or [], key=lambda k: k.get("position", 0))
    window = float(component.get("window_size", FRAME_SIZE))
    if audio.size < 2 or not keyframes or not window > 1:
        raise WavetableError(f"{name}: an Audio File Source without audio, key frames or window")
    key_pos = np.array([float(k.get("position", 0)) for k in keyframes])
    key_start = np.array([float(k.get("start_position", 0.0)) for k in keyframes])
    windows = int((key_start.max() - key_start.min()) / window) + 1  # distinct periods the table sweeps through
    positions = np.linspace(0.0, VITAL_POSITIONS, min(MAX_KEYFRAMES, windows)) if len(keyframes) > 1 else np.zeros(1)
    frames = []
    for p in positions:
        start = float(np.interp(p, key_pos, key_start))
        at = start + np.arange(FRAME_SIZE) * (window / FRAME_SIZE)
        frames.append(np.interp(at, np.arange(audio.size), audio, right=0.0))
    return list(positions), np.stack(frames)


class WavetableBank(Sequence[Wavetable]):
    """An ordered, named set of :class:`Wavetable` (the options of a space's ``osc_N_wavetable``)."""

    def __init__(self, tables: Iterable[Wavetable], name: str = "bank"):
        self.tables = tuple(tables)
        self.name = name
        self._vital: dict[int, dict[str, Any]] = {}
        if not self.tables:
            raise WavetableError(f"wavetable bank {name!r} is empty")
        names = [t.name for t in self.tables]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise WavetableError(f"wavetable bank {name!r}: names must be unique; repeated: {repeated[:5]}")

    def __len__(self) -> int:
        return len(self.tables)

    def __getitem__(self, index):  # type: ignore[override]
        return self.tables[index]

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    @functools.cached_property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for t in self.tables:
            h.update(t.name.encode())
            h.update(t.frames.astype(np.float16).tobytes())
        return h.hexdigest()[:16]

    def vital(self, index: int) -> dict[str, Any]:
        """Table ``index`` as Vital stores it (built once per bank; treat it as read-only)."""
        if index not in self._vital:
            self._vital[index] = self.tables[index].to_vital()
        return self._vital[index]

    @functools.cached_property
    def _features(self) -> np.ndarray:
        return np.stack([t.features for t in self.tables])

    def nearest(self, table: Wavetable) -> int:
        """The index of the entry that sounds most like ``table`` (closest harmonic spectra)."""
        return int(np.argmin(np.sum((self._features - table.features) ** 2, axis=1)))

    def index_of_vital(self, data: Mapping[str, Any]) -> int:
        """The entry a preset's stored table maps to: an entry it equals, else the nearest by sound; 0 for a
        table that cannot be read here."""
        try:
            table = Wavetable.from_vital(data)
        except WavetableError:
            return 0
        for i, t in enumerate(self.tables):
            if t.frames.shape == table.frames.shape and np.allclose(t.frames, table.frames, atol=2e-3):
                return i
        return self.nearest(table)

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, path: str | Path) -> WavetableBank:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                names, sources = [str(n) for n in data["names"]], [str(s) for s in data["sources"]]
                frames, counts = data["frames"].astype(np.float32), data["keyframes"]
        except (OSError, KeyError, ValueError) as e:
            raise WavetableError(f"{path}: not a wavetable bank ({e})") from None
        tables = [Wavetable(n, frames[i, : int(counts[i])], s) for i, (n, s) in enumerate(zip(names, sources))]
        return cls(tables, name=path.stem)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = np.zeros((len(self), MAX_KEYFRAMES, FRAME_SIZE), dtype=np.float16)
        for i, t in enumerate(self.tables):
            frames[i, : len(t.frames)] = t.frames
        with atomic_file(path) as f:
            np.savez_compressed(
                f,
                names=np.array(self.names),
                sources=np.array([t.source for t in self.tables]),
                frames=frames,
                keyframes=np.array([len(t.frames) for t in self.tables], dtype=np.int16),
            )
        return path


def read_vitaltable(path: str | Path) -> Wavetable:
    """A ``.vitaltable`` file as a :class:`Wavetable` named after the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WavetableError(f"{path}: cannot read a wavetable ({e})") from None
    if not isinstance(data, dict):
        raise WavetableError(f"{path}: a wavetable file is a JSON object")
    return dataclasses.replace(Wavetable.from_vital(data, name=path.stem), source=path.name)


# ---------------------------------------------------------------------- generated tables
_PHASE = np.arange(FRAME_SIZE) / FRAME_SIZE


def _additive(amplitudes: np.ndarray) -> np.ndarray:
    """One period from sine harmonics 1..len(amplitudes)."""
    k = np.arange(1, len(amplitudes) + 1)[:, None]
    return (np.asarray(amplitudes)[:, None] * np.sin(2 * np.pi * k * _PHASE)).sum(axis=0)


def _saw(n: int = 256) -> np.ndarray:
    return _additive(np.array([(-1) ** (k + 1) / k for k in range(1, n + 1)]))


def _square(n: int = 256) -> np.ndarray:
    return _additive(np.array([1.0 / k if k % 2 else 0.0 for k in range(1, n + 1)]))


def _triangle(n: int = 256) -> np.ndarray:
    return _additive(np.array([(-1) ** ((k - 1) // 2) / k**2 if k % 2 else 0.0 for k in range(1, n + 1)]))


def _pulse(width: float, n: int = 256) -> np.ndarray:
    k = np.arange(1, n + 1)
    return _additive(2.0 / (np.pi * k) * np.sin(np.pi * k * width)) if width else np.zeros(FRAME_SIZE)


# Formant centre frequencies and bandwidths (Hz) of five sung vowels (a typical adult voice).
VOWELS = {
    "a": ((800, 1150, 2900), (80, 90, 120)),
    "e": ((400, 1600, 2700), (60, 80, 120)),
    "i": ((270, 2140, 2950), (60, 90, 100)),
    "o": ((450, 800, 2830), (70, 80, 100)),
    "u": ((325, 700, 2530), (50, 60, 170)),
}


def _vowel(vowel: str, fundamental: float) -> np.ndarray:
    """One period of a glottal-like source (harmonics falling 12 dB/octave) through a vowel's formants,
    for a note at ``fundamental`` Hz (Vital plays a table at the note's pitch, so the formants sit right
    near that pitch and move with it elsewhere)."""
    centres, widths = VOWELS[vowel]
    k = np.arange(1, int(min(256, 8000 // fundamental)) + 1)
    f = k * fundamental
    envelope = sum(1.0 / (1.0 + ((f - c) / (b / 2)) ** 2) for c, b in zip(centres, widths))
    return _additive(envelope / k)


def generated_wavetables() -> list[Wavetable]:
    """Tables made here: basic shapes and their morphs, pulse widths, harmonic series, vowels."""

    def table(name: str, frames: Sequence[np.ndarray]) -> Wavetable:
        return Wavetable.from_frames(name, np.linspace(0, VITAL_POSITIONS, len(frames)), np.stack(frames), source="generated")

    sine, tri, saw, square = np.sin(2 * np.pi * _PHASE), _triangle(), _saw(), _square()
    out = [
        table("Sine", [sine]),
        table("Triangle", [tri]),
        table("Saw", [saw]),
        table("Square", [square]),
        table("Basic Shapes", [sine, tri, saw, square]),
        table("Pulse Width", [_pulse(w) for w in np.linspace(0.5, 0.03, MAX_KEYFRAMES)]),
        table(
            "Saw Harmonics",
            [_additive(np.array([(-1) ** (k + 1) / k for k in range(1, n + 1)])) for n in (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 128)],
        ),
        table(
            "Square Harmonics",
            [_additive(np.array([1.0 / k if k % 2 else 0.0 for k in range(1, n + 1)])) for n in (1, 3, 5, 7, 9, 11, 13, 15, 19, 23, 27, 31, 39, 47, 63, 127)],
        ),
        table("Harmonic Series", [np.sin(2 * np.pi * k * _PHASE) for k in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)]),
        table(
            "Organ Drawbars",
            [_additive(np.array(a)) for a in ([1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 1], [1, 1, 1, 1, 0, 0, 0, 1], [1, 0.8, 0.6, 1, 0.4, 0.6, 0, 1])],
        ),
        table("Sync Saw", [np.mod(r * _PHASE, 1.0) * 2 - 1 for r in np.geomspace(1.0, 8.0, MAX_KEYFRAMES)]),
    ]
    for label, fundamental in (("Low", 110.0), ("Mid", 220.0), ("High", 440.0)):
        frames = [_vowel(v, fundamental) for v in "aeiou"]
        out.append(table(f"Vowels {label}", frames))
    for v in "aeiou":
        out.append(table(f"Vowel {v.upper()}", [_vowel(v, f) for f in (110.0, 220.0)]))
    return out


def build_bank(folder: str | Path | None, name: str = "bank", generated: bool = True) -> tuple[WavetableBank, list[str]]:
    """A bank of :func:`generated_wavetables` (if asked) and every ``.vitaltable`` under ``folder``
    (recursive, sorted by path). Returns the bank and one message per file skipped (named, with why)."""
    tables = generated_wavetables() if generated else []
    taken = {t.name for t in tables}
    skipped: list[str] = []
    if folder is not None:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder of .vitaltable files")
        for path in sorted(folder.rglob("*.vitaltable")):
            try:
                table = read_vitaltable(path)
            except WavetableError as e:
                skipped.append(str(e))
                continue
            if table.name in taken:
                table = dataclasses.replace(table, name=f"{table.name} ({path.parent.name})")
            if table.name not in taken:
                tables.append(table)
                taken.add(table.name)
            else:
                skipped.append(f"{path}: a table named {table.name!r} is already in the bank")
    return WavetableBank(tables, name=name), skipped


def load_bank(name_or_path: str | Path) -> WavetableBank:
    """A bank by shipped name (``studio``) or ``.npz`` path (:func:`vital_gym.resources.find_config`)."""
    from vital_gym.resources import find_config

    return _load_bank_cached(str(find_config("wavetables", name_or_path)))


@functools.cache
def _load_bank_cached(path: str) -> WavetableBank:
    return WavetableBank.load(path)


def describe_bank(bank: WavetableBank) -> str:
    generated = sum(t.source == "generated" for t in bank.tables)
    keyframes = [len(t.frames) for t in bank.tables]
    return f"{bank.name}: {len(bank)} tables ({generated} generated), {min(keyframes)}-{max(keyframes)} key frames, mean {math.fsum(keyframes) / len(bank):.1f}"
