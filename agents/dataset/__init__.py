"""(audio, parameters) datasets generated through Vita: sharded, deterministic, resumable."""

from agents.dataset.generate import DatasetConfig, generate
from agents.dataset.loader import InterleavedDatasets, ShardDataset
from agents.dataset.shards import Manifest, read_shard

__all__ = ["DatasetConfig", "InterleavedDatasets", "Manifest", "ShardDataset", "generate", "read_shard"]
