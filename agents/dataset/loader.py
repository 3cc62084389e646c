"""Streaming a generated dataset to training: shards shuffled across epochs and DataLoader workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from agents.dataset.shards import Manifest, dequantise, read_shard, shard_index


class ShardDataset(IterableDataset):
    """Yields one dict of tensors per sample.

    ``logmel`` becomes float32 ``(1, n_mels, frames)`` in [0, 1] (the env's observation), ``audio`` float32
    in [-1, 1], ``params`` float32 ``(P,)``, ``discrete`` int64 ``(K,)``; other fields as stored. Each
    epoch visits every sample once: shard order is shuffled with ``seed + epoch`` (call
    :meth:`set_epoch`), shards are split between DataLoader workers, and samples are shuffled within a
    buffer of ``buffer_shards`` shards. ``augment`` (e.g. :class:`~agents.dataset.augment.LogMelAugment`)
    degrades each ``logmel`` with draws seeded by ``(seed, epoch)`` (per DataLoader worker).

    ``source_weights`` (source name as in the dataset config -> weight; sources left out weigh 1) keeps
    each sample with probability its source's weight over the largest weight, drawn per epoch: an epoch
    then over-represents the heavy sources (e.g. the uniform source, which the model parses worst)
    without copying a shard. ``len()`` stays the stored count.

    ``labels`` keeps only the rows whose ``label`` is one of these, in a dataset whose rows carry one
    (``vital-gym dataset select``: 0 the true parameters, 1 the matcher's selected candidate), so the same
    folder trains on either label or both. ``len()`` then counts the kept rows.
    """

    def __init__(
        self,
        folder: str | Path,
        fields: tuple[str, ...] = ("logmel", "params", "discrete"),
        shuffle: bool = True,
        seed: int = 0,
        buffer_shards: int = 2,
        shards: list[str] | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        source_weights: Mapping[str, float] | None = None,
        labels: Sequence[int] | None = None,
    ):
        self.folder = Path(folder)
        self.manifest = Manifest.load(self.folder)
        missing = [n for n in (shards or self.manifest.shards) if not (self.folder / n).is_file()]
        if missing or not self.manifest.shards:
            raise FileNotFoundError(f"{self.folder}: dataset incomplete (missing {missing[:3]}); finish it with generate")
        self.shards = sorted(shards or self.manifest.shards)
        self.fields, self.shuffle, self.seed = tuple(fields), shuffle, seed
        self.buffer_shards = max(1, buffer_shards)
        self.epoch = 0
        self.augment = augment
        self.keep = None if source_weights is None else self._keep_probabilities(source_weights)
        self.labels, self.kept_rows = (None, None) if labels is None else self._kept_labels(labels)

    def _kept_labels(self, labels: Sequence[int]) -> tuple[np.ndarray, int]:
        """The labels to keep and how many rows carry one of them (refused when none does)."""
        wanted = np.unique(np.asarray(labels, dtype=np.int64))
        if wanted.size == 0:
            raise ValueError(f"labels={list(labels)}: name at least one label to keep")
        try:
            stored = [read_shard(self.folder / n, ("label",))["label"] for n in self.shards]
        except KeyError:
            raise ValueError(f"{self.folder}: labels={list(labels)} given, but its rows have no label (a `vital-gym dataset select` dataset has)") from None
        kept_rows = sum(int(np.isin(a, wanted).sum()) for a in stored)
        if kept_rows == 0:
            raise ValueError(f"{self.folder}: no row is labelled {list(labels)} (its labels: {sorted(set(np.concatenate(stored).tolist()))})")
        return wanted, kept_rows

    def _keep_probabilities(self, weights: Mapping[str, float]) -> np.ndarray:
        """Per source index, the chance a sample of that source is kept."""
        names = list(self.manifest.config.get("sources", {}))
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"{self.folder}: source_weights names {unknown}, not sources of this dataset {names}")
        w = np.array([float(weights.get(n, 1.0)) for n in names])
        if (w < 0).any() or w.max() <= 0:
            raise ValueError(f"source_weights {dict(weights)}: weights must be >= 0 and one of them > 0")
        return w / w.max()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.labels is not None:
            return self.kept_rows
        return sum(len(self.manifest.shard_range(shard_index(n))) for n in self.shards)

    def _my_shards(self, rng: np.random.Generator) -> list[str]:
        order = list(self.shards)
        if self.shuffle:
            rng.shuffle(order)
        info = get_worker_info()
        return order if info is None else order[info.id :: info.num_workers]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        mine = self._my_shards(rng)
        info = get_worker_info()
        aug_rng = np.random.default_rng([self.seed, self.epoch, 0 if info is None else info.id + 1])
        extra = (("source",) if self.keep is not None else ()) + (("label",) if self.labels is not None else ())
        fields = (*self.fields, *(k for k in extra if k not in self.fields))
        for start in range(0, len(mine), self.buffer_shards):
            blocks = [read_shard(self.folder / n, fields) for n in mine[start : start + self.buffer_shards]]
            arrays = {k: np.concatenate([b[k] for b in blocks]) for k in fields}
            n = len(arrays[fields[0]])
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            if self.labels is not None:
                order = order[np.isin(arrays["label"][order], self.labels)]
            if self.keep is not None:
                order = order[rng.random(len(order)) < self.keep[arrays["source"][order]]]
            for i in order:
                item = {k: _to_tensor(k, arrays[k][i]) for k in self.fields}
                if self.augment is not None and "logmel" in item:
                    item["logmel"] = torch.from_numpy(self.augment(item["logmel"][0].numpy(), aug_rng))[None]
                yield item


class InterleavedDatasets(IterableDataset):
    """Several datasets trained on as one: each epoch yields every sample of each, interleaved at random.

    Which dataset gives the next sample is drawn in proportion to its ``len()``, seeded by ``(seed, epoch)``
    (per DataLoader worker); one that runs out drops out. So a folder of 2,000 rows beside one of 1,000
    fills about two thirds of every batch throughout the epoch, as one folder of all their shards would,
    while each keeps its own manifest, held-out shards and label or source filters. ``set_epoch`` reaches
    every dataset.
    """

    def __init__(self, datasets: Sequence[ShardDataset], seed: int = 0):
        if not datasets:
            raise ValueError("InterleavedDatasets: give at least one dataset")
        self.datasets, self.seed, self.epoch = list(datasets), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for d in self.datasets:
            d.set_epoch(epoch)

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, self.epoch, 0 if info is None else info.id + 1])
        kept = [d for d in self.datasets if len(d)]  # one of no rows is never drawn
        iterators = [iter(d) for d in kept]
        sizes = np.array([len(d) for d in kept], dtype=np.float64)
        bounds = _choice_bounds(sizes)
        while iterators:
            i = int(bounds.searchsorted(rng.random(), side="right"))
            try:
                yield next(iterators[i])
            except StopIteration:
                del iterators[i]
                sizes = np.delete(sizes, i)
                bounds = _choice_bounds(sizes)


def _choice_bounds(sizes: np.ndarray) -> np.ndarray:
    """What ``rng.choice(len(sizes), p=sizes / sizes.sum())`` searches a uniform draw in: searching
    ``rng.random()`` in these gives its index for the same generator state, without building them per draw
    (which cost a sixth of a ShardDataset sample)."""
    if not len(sizes):
        return sizes
    bounds = np.cumsum(sizes / sizes.sum())
    return bounds / bounds[-1]


def _to_tensor(name: str, value: np.ndarray) -> torch.Tensor:
    if name == "logmel":
        return torch.from_numpy(dequantise(value))[None]
    if name == "audio":
        return torch.from_numpy(value.astype(np.float32) / 32768.0)
    if name == "discrete":
        return torch.from_numpy(value.astype(np.int64))
    return torch.as_tensor(value)
