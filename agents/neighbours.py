"""A model's training data as match candidates: the samples whose sound is nearest the target's.

A model's hypotheses are one way to propose presets; the samples of its training dataset whose sound is
nearest the target's are another, and each is a parameter vector that was rendered and heard (a perturbed
human preset with the preset it perturbs). :class:`DatasetNeighbours` indexes a dataset by the model's own
view of a sound: the encoder's patch tokens of each sample's stored log-mel, averaged into one ``(D,)``
embedding. :meth:`DatasetNeighbours.nearest` names the ``k`` samples, among those recorded at the
dataset's note nearest the target's, whose embedding is closest (Euclidean) to the target's; ``vital-gym
match`` renders them at the target's note beside the model's candidates and keeps the closest of all.

An index belongs to one model (its embeddings are that model's) and is built once: ``vital-gym neighbours
build --checkpoint M --dataset D`` writes ``M/neighbours.npz`` (``NEIGHBOURS_FILE``), which the matcher
loads with the model; ``--max-samples`` keeps a file to ship small. Embeddings and parameters are stored as
float16. A sample that perturbs a human preset names the preset's file: a preset of the library shipped
with vital-gym as ``shipped:<path in agents/library>``, any other by its path, which must still be there
when the index is used (samples whose preset is gone or unreadable are left out, with a warning).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agents.dataset.shards import Manifest, dequantise, read_shard
from agents.supervised.model import SoundMatcher
from vital_gym.features import MelConfig
from vital_gym.params import ParameterSpace
from vital_gym.preset import Preset, PresetCodec, PresetError

NEIGHBOURS_FILE = "neighbours.npz"  # a model folder's index of its training data
DEFAULT_NEIGHBOURS = 8  # dataset samples rendered at the target's note beside the model's candidates
SHIPPED = "shipped:"  # a base preset of the shipped library, named by its path there


@dataclass(frozen=True)
class Neighbour:
    """One dataset sample: its index in the dataset, parameter vector and the codec it was rendered with."""

    sample: int
    x: np.ndarray
    codec: PresetCodec

    def preset(self, name: str = "vital-gym") -> Preset:
        return self.codec.to_preset(self.x, name=name)


class DatasetNeighbours:
    """Embeddings ``(N, D)``, parameter vectors ``(N, P)``, notes ``(N,)`` and base presets of a dataset's
    samples (:meth:`build` makes one, :meth:`load` reads one), searched by :meth:`nearest`."""

    def __init__(
        self,
        embeddings: np.ndarray,
        params: np.ndarray,
        notes: np.ndarray,
        bases: np.ndarray,
        base_files: list[str],
        samples: np.ndarray,
        space: ParameterSpace,
        dataset: str = "",
        seed: int | None = None,
    ):
        if not len(embeddings) == len(params) == len(notes) == len(bases) == len(samples) or not len(samples):
            raise ValueError("a dataset index needs one embedding, parameter vector, note, base and index per sample, and a sample")
        if params.shape[1] != len(space):
            raise ValueError(f"the index's parameter vectors have {params.shape[1]} values; space '{space.name}' has {len(space)}")
        self.embeddings = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))
        self.params, self.notes, self.bases = params, notes.astype(np.int64), bases.astype(np.int64)
        self.base_files, self.samples, self.space, self.dataset = list(base_files), samples.astype(np.int64), space, dataset
        self.seed = seed  # the dataset's seed: a benchmark refuses an index of its synthetic set's
        self.codec = PresetCodec(space)
        self.note_values = np.unique(self.notes)
        self._codecs: dict[int, PresetCodec | None] = {}  # base -> its codec, read when first needed

    def __len__(self) -> int:
        return len(self.samples)

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        dataset: str | Path,
        model: SoundMatcher,
        space: ParameterSpace,
        observation: MelConfig,
        max_samples: int | None = None,
        batch_size: int = 256,
        device: str = "cpu",
        progress: bool = False,
    ) -> DatasetNeighbours:
        """Embed the first ``max_samples`` samples (all by default; whole shards in order) of ``dataset``
        with ``model``'s encoder. The dataset must be of ``space`` and of the model's log-mel settings
        (``observation``)."""
        from tqdm import tqdm

        from agents.dataset.generate import DatasetConfig, SampleMaker

        folder = Path(dataset)
        manifest = Manifest.load(folder)
        if manifest.space_fingerprint != space.fingerprint:
            raise ValueError(f"dataset {folder} was made with another parameter space than the model's '{space.name}'")
        if MelConfig.from_dict(manifest.config.get("observation")) != observation:
            raise ValueError(f"dataset {folder} stores other log-mels than the model reads ({manifest.config.get('observation')})")
        if not manifest.shards:
            raise FileNotFoundError(f"dataset {folder} has no finished shard yet")
        if max_samples is not None and max_samples < 1:
            raise ValueError(f"max_samples={max_samples}: give at least 1")
        base_files = [_portable(b.path) for b in SampleMaker(DatasetConfig.from_dict(manifest.config)).bases] if manifest.base_presets else []
        model = model.to(device).eval()
        columns: dict[str, list[np.ndarray]] = {k: [] for k in ("embeddings", "params", "midi_note", "base", "index")}
        count = 0
        names = sorted(manifest.shards)
        for name in tqdm(names, unit="shard", desc=f"indexing {folder}", disable=not progress):
            if max_samples is not None and count >= max_samples:
                break
            shard = read_shard(folder / name, ("logmel", "params", "midi_note", "base", "index"))
            for start in range(0, len(shard["params"]), batch_size):
                logmel = torch.from_numpy(dequantise(shard["logmel"][start : start + batch_size]))[:, None].to(device)
                columns["embeddings"].append(embed(model, logmel).cpu().numpy().astype(np.float16))
            for k in ("params", "midi_note", "base", "index"):
                columns[k].append(shard[k])
            count += len(shard["params"])
        cut = slice(0, max_samples)
        arrays = {k: np.concatenate(v)[cut] for k, v in columns.items()}
        return cls(
            arrays["embeddings"],
            arrays["params"].astype(np.float16),
            arrays["midi_note"],
            arrays["base"],
            base_files,
            arrays["index"],
            space,
            str(folder),
            int(manifest.config.get("seed", -1)),
        )

    def save(self, path: str | Path) -> Path:
        """Write the index as one ``.npz`` (float16 embeddings and parameters)."""
        from vital_gym.files import atomic_file

        path = Path(path)
        with atomic_file(path) as f:
            np.savez(
                f,
                embeddings=self.embeddings.numpy().astype(np.float16),
                params=self.params.astype(np.float16),
                midi_note=self.notes.astype(np.int16),
                base=self.bases.astype(np.int16),
                base_files=np.array(self.base_files, dtype=str),
                index=self.samples,
                space_fingerprint=np.array(self.space.fingerprint),
                dataset=np.array(self.dataset),
                seed=np.array(-1 if self.seed is None else self.seed),
            )
        return path

    @classmethod
    def load(cls, path: str | Path, space: ParameterSpace) -> DatasetNeighbours:
        """Read an index written by :meth:`save` for a model of ``space``. Samples whose base preset
        cannot be read are left out with a warning naming the file."""
        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        if str(arrays["space_fingerprint"]) != space.fingerprint:
            raise ValueError(f"{path}: an index of another parameter space than '{space.name}'")
        base_files = [str(b) for b in arrays["base_files"]]
        keep = np.ones(len(arrays["index"]), dtype=bool)
        for b, file in enumerate(base_files):
            if not _base_file(file).is_file():
                warnings.warn(f"{path}: the samples perturbing {file} are left out: no such file", stacklevel=2)
                keep &= arrays["base"] != b
        return cls(
            arrays["embeddings"][keep],
            arrays["params"][keep],
            arrays["midi_note"][keep],
            arrays["base"][keep],
            base_files,
            arrays["index"][keep],
            space,
            str(arrays["dataset"]),
            int(arrays["seed"]),
        )

    def nearest(self, embedding: torch.Tensor, midi_note: int, k: int = DEFAULT_NEIGHBOURS) -> list[Neighbour]:
        """The ``k`` samples recorded at the dataset note nearest ``midi_note`` whose embeddings are closest
        to ``embedding`` ``(D,)``, closest first."""
        note = self.note_values[np.argmin(np.abs(self.note_values - midi_note))]
        rows = np.flatnonzero(self.notes == note)
        distances = torch.cdist(embedding.float()[None].cpu(), self.embeddings[rows])[0]
        out = []
        for i in rows[distances.argsort().numpy()]:
            codec = self._codec(int(self.bases[i]))
            if codec is not None:
                out.append(Neighbour(int(self.samples[i]), self.params[i].astype(np.float32), codec))
            if len(out) == k:
                break
        return out

    def _codec(self, base: int) -> PresetCodec | None:
        """The codec a sample of base ``base`` was rendered with (the space's own for -1), as the
        generator's; None, with a warning the first time, for a base preset that cannot be read."""
        if base < 0:
            return self.codec
        if base not in self._codecs:
            file = self.base_files[base]
            try:
                self._codecs[base] = PresetCodec(self.space, base=Preset.load(_base_file(file)))
            except (OSError, PresetError) as e:
                warnings.warn(f"dataset index: the samples perturbing {file} are left out: {e}", stacklevel=2)
                self._codecs[base] = None
        return self._codecs[base]


def embed(model: SoundMatcher, logmel: torch.Tensor) -> torch.Tensor:
    """``(B, 1, mels, frames)`` log-mels -> ``(B, D)``: the encoder's patch tokens averaged."""
    return model.encoder(logmel).mean(1)


def _portable(path: Path) -> str:
    """A base preset's file as the index names it: within the shipped library, relative to it."""
    from agents.library import shipped_library_dir

    path = path.resolve()
    shipped = shipped_library_dir().resolve()
    return SHIPPED + path.relative_to(shipped).as_posix() if path.is_relative_to(shipped) else str(path)


def _base_file(file: str) -> Path:
    from agents.library import shipped_library_dir

    return shipped_library_dir() / file.removeprefix(SHIPPED) if file.startswith(SHIPPED) else Path(file)
