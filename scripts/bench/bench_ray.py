"""Dataset generation on Ray against the local generator: samples/s by worker count, and the cost per core-hour.

    HF_HUB_OFFLINE=1 python scripts/bench/bench_ray.py --n 96                         # 1 and 2 workers here
    HF_HUB_OFFLINE=1 python scripts/bench/bench_ray.py --n 448 --workers 1 4 8 14     # a 16-core machine
    HF_HUB_OFFLINE=1 python scripts/bench/bench_ray.py --n 448 --workers 16 32 --address auto --no-local  # a cluster

For each worker count: the local generator (worker processes) and the same config as Ray tasks, each
measured with start-up excluded (two fresh runs of ``workers x shard_size`` and of that plus ``--n``
samples; the rate is ``n`` over the difference of their times). Ray runs on a cluster it starts here with
as many CPUs as the largest worker count, or on ``--address``'s; a first run spawns its worker processes.
Printed: samples/s, Ray's rate over the local one at the same count (its overhead), the rate over
``workers x`` the one-worker rate (scaling; target at least 0.8 at 14 workers), and what 1M samples cost
in core-hours.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import warnings
from pathlib import Path

from bench_dataset import generation_rate  # this folder: run as a script

from agents.cluster import connect
from agents.dataset import DatasetConfig, generate
from vital_gym.resources import find_config


def main() -> None:
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=96, help="samples per measured run (beyond the start-up run)")
    ap.add_argument("--config", default="core", help="a dataset config (name or YAML)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--address", help="a running Ray cluster (default: start one here)")
    ap.add_argument("--no-local", action="store_true", help="Ray only (a cluster larger than this machine)")
    args = ap.parse_args()
    config = DatasetConfig.from_yaml(find_config("dataset", args.config), shard_size=args.shard_size)
    ray = connect(args.address) if args.address else None
    if ray is None:
        import ray

        ray.init(num_cpus=max(args.workers), log_to_driver=False)
    tmp = Path(tempfile.mkdtemp())
    try:
        generate(config, tmp / "warm-up", max(args.workers) * config.shard_size, workers=max(args.workers), progress=False, cluster=True)
        rows = []
        for workers in args.workers:
            local = None if args.no_local else generation_rate(config, args.n, workers, tmp / f"local{workers}")
            on_ray = generation_rate(config, args.n, workers, tmp / f"ray{workers}", cluster=True)
            rows.append((workers, local, on_ray))
        one = {kind: next((r[i] for r in rows if r[0] == 1 and r[i]), None) for i, kind in ((1, "local"), (2, "ray"))}
        print(f"config '{args.config}', {args.n} samples per run, shards of {config.shard_size}")
        print(f"{'workers':>7} | {'local samples/s':>15} | {'Ray samples/s':>13} | {'Ray / local':>11} | {'Ray scaling':>11} | {'core-hours per 1M (Ray)':>23}")
        for workers, local, on_ray in rows:
            ratio = f"{on_ray / local:.2f}" if local else "-"
            scaling = f"{on_ray / (workers * one['ray']):.2f}" if one["ray"] else "-"
            core_hours = 1e6 / (on_ray / workers) / 3600
            print(f"{workers:>7} | {(f'{local:.2f}' if local else '-'):>15} | {on_ray:>13.2f} | {ratio:>11} | {scaling:>11} | {core_hours:>23.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        ray.shutdown()


if __name__ == "__main__":
    main()
