"""Benchmark dataset generation against the raw Vita render rate, and the loader's throughput.

    HF_HUB_OFFLINE=1 python scripts/bench/bench_dataset.py --n 120

Generates samples of configs/dataset/core.yaml with 1 and then 2 worker processes (start-up excluded, see
``generation_rate``), and in the same run times raw
``vita.Synth.render`` calls on the same kind of presets on one core. Target: generation >= 0.9 x workers
x raw rate. Then streams the 2-worker dataset through ``ShardDataset`` and a DataLoader.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from agents.dataset import DatasetConfig, ShardDataset, generate
from agents.dataset.generate import SampleMaker
from vital_gym.resources import find_config


def raw_render_rate(config: DatasetConfig, n: int) -> float:
    """Samples per second of bare vita renders (a synth already holding the preset), on one core."""
    import vita

    maker = SampleMaker(config)
    cfg = maker.render_config
    times = []
    for index in range(n):
        x, _, note, velocity, base = maker.draw(index, 0)
        synth = vita.Synth()
        synth.load_json(maker.renderer.prepare(maker.codec_for(base).to_preset(x)).to_json())
        t = time.perf_counter()
        synth.render(note, velocity, cfg.note_seconds, cfg.render_seconds)
        times.append(time.perf_counter() - t)
    return 1.0 / statistics.mean(times)


def generation_rate(config: DatasetConfig, n: int, workers: int, out: Path, cluster: bool | str = False) -> float:
    """Samples per second with worker start-up excluded: two fresh runs, of ``small`` and ``small + n``
    samples, and the rate from the difference of their times (``cluster``: as ``generate``'s, on Ray)."""
    small = workers * config.shard_size
    times = []
    for count in (small, small + n):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        generate(config, out, count, workers=workers, progress=False, cluster=cluster)
        times.append(time.perf_counter() - start)
    return n / (times[1] - times[0])


def main() -> None:
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=120, help="samples per generation run")
    ap.add_argument("--config", default="core", help="a dataset config (name or YAML)")
    args = ap.parse_args()
    config = DatasetConfig.from_yaml(find_config("dataset", args.config), shard_size=max(1, args.n // 8))

    raw = raw_render_rate(config, min(args.n, 60))
    print(f"raw vita render: {raw:.1f} samples/s on one core (mean of {min(args.n, 60)} renders of the same presets)")
    tmp = Path(tempfile.mkdtemp())
    try:
        for workers in (1, 2):
            rate = generation_rate(config, args.n, workers, tmp / f"w{workers}")
            print(f"generate, {workers} worker(s): {rate:.1f} samples/s = {rate / (workers * raw):.2f} x workers x raw rate (target >= 0.9)")
        ds = ShardDataset(tmp / "w2", fields=("logmel", "params", "discrete"))
        from torch.utils.data import DataLoader

        for num_workers in (0, 2):
            start, count = time.perf_counter(), 0
            for batch in DataLoader(ds, batch_size=32, num_workers=num_workers):
                count += len(batch["params"])
            print(f"loader, {num_workers} DataLoader workers: {count / (time.perf_counter() - start):.0f} samples/s")
        size = sum(f.stat().st_size for f in (tmp / "w2").glob("shard-*.npz")) / len(ds)
        print(f"storage: {size / 1e3:.1f} kB per sample -> {size * 1e5 / 1e9:.1f} GB per 100K samples")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
