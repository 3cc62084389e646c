"""Fixtures for the agents: a tiny dataset and a tiny trained checkpoint (seconds to make)."""

import pytest

from agents.dataset import generate
from agents.supervised.model import ModelConfig
from agents.supervised.train import TrainConfig, train
from tests.agents.test_dataset import tiny_config

# A model small enough to train for a few steps in seconds, on the tiny dataset's 32-band log-mels.
TINY_MODEL = {
    "encoder": {"n_mels": 32, "frames": 32, "patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2},
    "decoder": {"dim": 32, "depth": 1, "num_heads": 2, "note_conditioning": True},
}


def with_hypotheses(model: dict, k: int) -> ModelConfig:
    """``model`` with a decoder of ``k`` hypotheses."""
    return ModelConfig.from_dict({**model, "decoder": {**model["decoder"], "hypotheses": k}})


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_dataset")
    generate(tiny_config(), folder, 12, workers=1, progress=False)  # 4 shards of 3
    return folder


def tiny_train_config(dataset, out, **changes) -> TrainConfig:
    return TrainConfig(
        **{
            "dataset": str(dataset),
            "out": str(out),
            "model": TINY_MODEL,
            "steps": 4,
            "batch_size": 3,
            "warmup_steps": 2,
            "val_shards": 1,
            "val_batches": 1,
            "val_render_items": 2,
            "val_every": 2,
            "log_every": 1,
            "num_workers": 0,
            **changes,
        }
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset, tmp_path_factory):
    """A SoundMatcher of the tiny space trained for 2 steps: real weights of the real architecture."""
    return train(tiny_train_config(tiny_dataset, tmp_path_factory.mktemp("run"), steps=2), log=lambda *_: None)


@pytest.fixture(scope="session")
def ray_cluster():
    """A two-node Ray cluster on this machine (one CPU each), joined by this process for the session."""
    ray = pytest.importorskip("ray", reason="Ray is the optional extra vital-gym[ray]")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 150 * 2**20})
    cluster.add_node(num_cpus=1, object_store_memory=150 * 2**20)
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="session")
def tiny_studio(tmp_path_factory):
    """A tiny dataset of the studio space (bank wavetables, effects, 16 slots) and a model trained on it
    for 2 steps: the matcher's path through presets as real ones are built."""
    dataset = tmp_path_factory.mktemp("tiny_studio_dataset")
    generate(tiny_config(space="studio"), dataset, 6, workers=1, progress=False)  # 2 shards of 3
    run = tmp_path_factory.mktemp("tiny_studio_run")
    return dataset, train(tiny_train_config(dataset, run, steps=2, val_render_items=1), log=lambda *_: None)
