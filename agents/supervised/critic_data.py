"""Rendered candidate pools, the training data of a candidate critic (``agents/supervised/critic.py``).

Targets are drawn like a dataset config's samples from ``--seed`` (neither the training data's, the
benchmark's nor the development set's); for each, the model's K hypotheses and ``--draws`` drawn presets per
hypothesis (``Matcher.candidates``, seeded by the target's index) are rendered as ``vital-gym match``
ranks them (screening renders) and every candidate's distance to the target is kept, beside the target's
log-mel (as the model reads it), note, velocity, source and true parameters.

    vital-gym critic data --n 800 -o data/critic_s11 --seed 11
    vital-gym critic data --n 800 -o data/critic_s11 --seed 11 --part 0/16   # 16 processes, one part each
    vital-gym critic train --data data/critic_s11 -o agents/models/core_cpu/critic

Each process (``--part I/N``: targets I, I+N, ...) renders on one thread and writes its part
(``part-I-of-N.npz``) every ``--save-every`` targets, so a run stopped early keeps what it made, and a run
started again with the same settings carries on where its part stopped. ``critic_data.json`` records the
model (its folder and weights' SHA-256), the seed, the draws and the dataset config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agents.benchmark.testsets import DEV_SEED, TEST_SEED
from agents.dataset.generate import REJECT_REASONS, DatasetConfig, SampleMaker, parse_part
from agents.dataset.shards import quantise
from agents.match import DEFAULT_MODEL, Matcher
from agents.supervised.critic import ARRAYS, META_FILE, model_digest, part_path
from vital_gym.resources import find_config


def recorded_path(path: Path) -> str:
    """``path`` relative to the working directory where it lies under it (the shipped model, by default),
    so the record names the same model in another checkout; else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace) -> int:
    """``vital-gym critic data`` (its flags: :func:`agents.cli.build_parser`)."""
    out = Path(args.out)
    part, parts = parse_part(args.part)
    if args.n < 1 or args.draws < 1 or args.save_every < 1:
        raise ValueError("--n, --draws and --save-every must be >= 1")
    dataset_config = find_config("dataset", args.config)
    config = DatasetConfig.from_yaml(dataset_config)
    if args.seed in (TEST_SEED, DEV_SEED, config.seed):
        raise ValueError(f"--seed {args.seed} is the benchmark's, the development set's or the training data's seed; choose another")
    torch.set_num_threads(1)
    checkpoint = Path(args.checkpoint) if args.checkpoint else DEFAULT_MODEL
    matcher = Matcher(checkpoint, render_workers=1, critic=False)  # the pools are the model's own draws
    maker = SampleMaker(dataclasses.replace(config, seed=args.seed, audio_sample_rate=None))
    if maker.space.fingerprint != matcher.space.fingerprint:
        raise ValueError(f"--config {args.config}: its space '{maker.space.name}' is not the model's '{matcher.space.name}'")
    meta = {
        "checkpoint": recorded_path(checkpoint),
        "model_sha256": model_digest(checkpoint),
        "seed": args.seed,
        "draws": args.draws,
        "hypotheses": matcher.model.num_hypotheses,
        "dataset_config": str(dataset_config),
        "n": args.n,
        "render": dataclasses.asdict(matcher.candidate_renderers[0].config),
    }
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / META_FILE
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        # The model is its weights (model_sha256), not where its folder lies: a moved checkout carries on.
        changed = sorted(k for k in meta if k != "checkpoint" and old.get(k) != meta[k])
        if changed:
            raise ValueError(f"{out} holds pools made with other settings ({', '.join(changed)}); choose another --out")
    else:
        meta_path.write_text(json.dumps(meta, indent=1))
    path = part_path(out, part, parts)
    rows: dict[str, list] = {k: [] for k in ARRAYS}
    if path.is_file():  # carry on
        with np.load(path) as done:
            rows = {k: list(done[k]) for k in ARRAYS}
    todo = [k for k in range(part, args.n, parts) if k not in set(int(i) for i in rows["index"])]
    for count, k in enumerate(tqdm(todo, unit="target", disable=args.quiet), 1):
        s = maker.render_audible(k, dict.fromkeys(REJECT_REASONS, 0))
        audio = s.result.audio
        xs = matcher.candidates(audio, s.note, args.draws, seed=k)
        *_, distances = matcher.render_closest(audio, xs, s.note, s.velocity)
        for key, value in zip(
            ARRAYS,
            (k, quantise(matcher.mel(audio)), s.note, s.velocity, s.source, s.x.astype(np.float32), xs.astype(np.float16), np.array(distances, np.float32)),
        ):
            rows[key].append(value)
        if count % args.save_every == 0 or count == len(todo):
            tmp = path.with_name(f".tmp-{path.name}")  # not a part-* name, so a half-written file is never read
            np.savez_compressed(tmp, **{key: np.stack(v) for key, v in rows.items()})
            os.replace(tmp, path)
    print(f"{path}: {len(rows['index'])} targets")
    return 0
