"""Dataset generation as Ray tasks on a two-node cluster: the local generator's guarantees."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agents.dataset.generate import generate
from agents.dataset.shards import Manifest, shard_name
from tests.agents.test_dataset import tiny_config

N, SHARD = 12, 6  # two shards: one per node


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Manifest:
    return generate(tiny_config(shard_size=SHARD), tmp_path_factory.mktemp("local"), N, workers=1, progress=False)


def kill_a_shard_task(killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first Ray worker process seen making a shard (Ray titles it after the task)."""
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            try:
                running = proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::_ray_shard")
            except OSError:
                continue
            if running:
                time.sleep(0.2)  # mid-shard
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
                return
        time.sleep(0.02)


def test_ray_shards_are_the_local_generators_byte_for_byte(ray_cluster, local, tmp_path):
    manifest = generate(tiny_config(shard_size=SHARD), tmp_path, N, workers=2, progress=False, cluster=True)
    assert manifest.shards == local.shards and manifest.num_shards == 2  # the SHA-256 of every file
    assert manifest.rejected == local.rejected
    assert Manifest.load(tmp_path).shards == local.shards


@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="finds the worker through /proc")
def test_a_worker_killed_mid_shard_is_retried_and_the_shards_are_still_identical(ray_cluster, local, tmp_path):
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=kill_a_shard_task, args=(killed, stop))
    killer.start()
    try:
        manifest = generate(tiny_config(shard_size=SHARD), tmp_path, N, workers=2, progress=False, cluster=True)
    finally:
        stop.set()
        killer.join()
    assert killed, "no shard task was seen running"
    assert manifest.shards == local.shards


def test_a_resumed_ray_run_keeps_complete_shards_and_makes_only_the_rest(ray_cluster, local, tmp_path):
    generate(tiny_config(shard_size=SHARD), tmp_path, N, workers=2, progress=False, cluster=True)
    kept, lost = tmp_path / shard_name(0), tmp_path / shard_name(1)
    lost.unlink()
    manifest = Manifest.load(tmp_path)
    manifest.shards.pop(shard_name(0))  # as if the run stopped after writing shard 0, before recording it
    manifest.save(tmp_path)
    before = kept.stat().st_mtime_ns
    resumed = generate(tiny_config(shard_size=SHARD), tmp_path, N, workers=2, progress=False, cluster=True)
    assert kept.stat().st_mtime_ns == before  # verified, not made again
    assert resumed.shards == local.shards
