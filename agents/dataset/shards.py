"""Shard files and the manifest.

A shard is an uncompressed ``.npz`` holding a fixed, contiguous block of sample indices; it is written to
a temporary name and renamed, so a killed run never leaves a half-written shard under its real name. Its
bytes depend on its arrays alone (:func:`encode_shard`), so one seed and config give one SHA-256 on any
machine, with any number of workers.
``manifest.json`` records the full config, the Vita version, the parameter space's fingerprint and a
SHA-256 per shard. Arrays per shard (n samples):

* ``index`` int64 (n,): global sample indices (the sample's seed is ``[seed, index, attempt]``)
* ``params`` float32 (n, P): the parameter vector in ``[0, 1]`` (canonical form)
* ``discrete`` int16 (n, K): the value index of every discrete parameter (categorical, integer, on/off,
  modulation sources and destinations), in ``manifest.discrete_names`` order
* ``midi_note`` int16 (n,), ``velocity`` float32 (n,), ``attempts`` int16 (n,), ``source`` int16 (n,)
* ``base`` int16 (n,): for samples perturbed from a human preset, its index in ``manifest.base_presets``
  (controls outside the space keep that preset's values); -1 otherwise
* ``logmel`` uint8 (n, n_mels, frames): the env's observation quantised to 256 levels (for the "vital"
  log-mel, 0.31 dB steps over 80 dB; the config's ``observation`` names the front end)
* ``audio`` int16 (n, samples): mono audio at ``audio_sample_rate`` (absent when that is null)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vital_gym.files import atomic_file

MANIFEST = "manifest.json"


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.npz"


def shard_index(name: str) -> int:
    """``shard-00012.npz`` -> 12."""
    return int(Path(name).stem.split("-")[1])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encode_shard(arrays: dict[str, np.ndarray]) -> bytes:
    """A shard file's bytes: the uncompressed ``.npz`` that ``np.load`` reads, with every member dated
    1980-01-01 (``np.savez`` dates them with the clock, so two writes of one shard would differ)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(member, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
    return buffer.getvalue()


def write_shard_bytes(path: Path, data: bytes) -> str:
    """Write an encoded shard atomically (temporary file, fsync, rename); returns its SHA-256."""
    with atomic_file(path, fsync=True) as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def write_shard(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Write a shard atomically and return the file's SHA-256."""
    return write_shard_bytes(path, encode_shard(arrays))


def quantise(features: np.ndarray) -> np.ndarray:
    """Features in ``[0, 1]`` as a shard stores them: uint8, 256 levels (:func:`dequantise` reads them back)."""
    return np.round(np.asarray(features) * 255.0).astype(np.uint8)


def dequantise(stored: np.ndarray) -> np.ndarray:
    """Stored uint8 features back in ``[0, 1]``, float32: what every model reads."""
    return np.asarray(stored).astype(np.float32) / 255.0


def as_stored(features: Any) -> Any:
    """A tensor of features in ``[0, 1]`` at the 256 levels a shard stores, ``dequantise(quantise(x))`` on any
    device: what a model trained on the data reads, whichever front end computed the features."""
    return (features * 255.0).round() / 255.0


def read_shard(path: str | Path, fields: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The shard's arrays, or only ``fields`` (an .npz member is read only when asked for)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in (fields or data.files)}


@dataclass
class Manifest:
    config: dict[str, Any]
    space_fingerprint: str
    vita_version: str
    param_names: list[str]
    discrete_names: list[str]
    num_samples: int
    shard_size: int
    shards: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    base_presets: list[str] = field(default_factory=list)  # what the "base" field indexes
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count, over finished shards
    derived_from: dict[str, Any] | None = None  # refeature's source folder and its observation settings

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: not a vital-gym dataset folder")
        return cls(**json.loads(path.read_text()))

    def save(self, folder: str | Path) -> None:
        path = Path(folder) / MANIFEST
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @property
    def num_shards(self) -> int:
        return -(-self.num_samples // self.shard_size)

    def shard_range(self, shard: int) -> range:
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, self.num_samples))

    def verify(self, folder: str | Path) -> list[str]:
        """Names of listed shards that are missing or whose checksum does not match."""
        folder = Path(folder)
        return [n for n, digest in self.shards.items() if not (folder / n).is_file() or sha256(folder / n) != digest]
