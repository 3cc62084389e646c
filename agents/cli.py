"""The ``vital-gym`` command.

    vital-gym dataset generate --config configs/dataset/core.yaml --n 100000 --out data/core --workers 2
    vital-gym dataset verify data/core
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the Hugging Face hub


def _generate(args: argparse.Namespace) -> int:
    from agents.dataset.generate import DatasetConfig, default_workers, generate

    overrides = {"space": args.space, "seed": args.seed, "shard_size": args.shard_size}
    config = (
        DatasetConfig.from_yaml(args.config, **overrides)
        if args.config
        else DatasetConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    )
    manifest = generate(config, args.out, args.n, workers=args.workers or default_workers(), progress=not args.quiet)
    size = sum(f.stat().st_size for f in Path(args.out).glob("shard-*.npz"))
    print(
        f"{manifest.num_samples} samples in {len(manifest.shards)} shards, {size / 1e9:.2f} GB "
        f"({size / manifest.num_samples / 1e3:.1f} kB per sample); rejected renders: {manifest.rejected}"
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from agents.dataset.shards import Manifest

    manifest = Manifest.load(args.folder)
    bad = manifest.verify(args.folder)
    missing = manifest.num_shards - len(manifest.shards)
    if bad or missing:
        print(f"{args.folder}: {len(bad)} corrupt or missing shards {bad[:5]}, {missing} not generated yet")
        return 1
    print(f"{args.folder}: {manifest.num_samples} samples, {len(manifest.shards)} shards, all checksums match")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vital-gym", description="vital-gym: inverse synthesis on Vital")
    sub = parser.add_subparsers(dest="command", required=True)
    dataset = sub.add_parser("dataset", help="generate and check (audio, parameters) datasets").add_subparsers(
        dest="action", required=True
    )
    gen = dataset.add_parser("generate", help="generate or resume a dataset")
    gen.add_argument("--config", help="a dataset YAML (configs/dataset/core.yaml)")
    gen.add_argument("--space", help="parameter space name or YAML (overrides the config)")
    gen.add_argument("--n", type=int, required=True, help="number of samples")
    gen.add_argument("--out", required=True, help="output folder (re-run the same command to resume)")
    gen.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    gen.add_argument("--seed", type=int, help="overrides the config's seed")
    gen.add_argument("--shard-size", type=int, help="samples per shard (overrides the config)")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_generate)
    ver = dataset.add_parser("verify", help="check every shard against the manifest's checksums")
    ver.add_argument("folder")
    ver.set_defaults(func=_verify)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"vital-gym: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
