"""Targets labelled with the matcher's own closest candidate: one round of expert iteration.

A network trained on true parameters learns, for a sound that many presets could make, the average of
those presets (README, "Where the model loses to the neighbour"): the true preset is one arbitrary
member of the set, so the labels of similar sounds disagree. Here each target is instead labelled with
the preset that ``vital-gym match`` finds for it, the closest of its candidates (hypotheses and draws)
by the real synth's render, optionally refined by CMA-ES: a label that sounds alike and is one the model
can already propose, so the labels of similar sounds agree with each other. Training on them
(``configs/train/supervised_cpu_selected_only.yaml``) distils the search into the network (expert iteration,
Anthony et al. 2017; self-imitation, Oh et al. 2018), so its next search starts from better candidates.

Targets are drawn as the training data is (``--config``), or from some of its sources alone
(``--sources uniform``: the source where the model trails nearest neighbour most), from ``--seed`` (not the
data's, the benchmark's or the development set's seed), rendered exactly, and written as a dataset folder that
``vital-gym train`` reads: shards of ``2 * n`` rows, each target twice with the same log-mel,
once labelled with its true parameters (``label`` 0) and once with the selected candidate (``label``
1). ``selection.json`` records the model and settings that chose the labels. Extra arrays: ``label``
int8, ``distance`` float32 (the selected candidate's exact distance to the target; 0 for true rows) and
``true_params`` float32 ``(n, P)``. Resumable: finished shards are kept.
A match renders on two threads but keeps a 2-core machine only about half busy, so ``--part I/N`` makes
only the shards ``s`` with ``s % N == I`` (run N such processes side by side); a run without ``--part``
then adopts every whole shard they wrote, makes any missing, and writes the manifest.

    vital-gym dataset select --n 2000 -o data/selected
    vital-gym dataset select --n 2000 -o data/selected --part 0/2 &   # side by side, then
    vital-gym dataset select --n 2000 -o data/selected --part 1/2; wait
    vital-gym dataset select --n 2000 -o data/selected                # the manifest
    vital-gym dataset select --n 2000 --refine 16 -o data/selected_refined
    vital-gym dataset select --n 1000 --seed 4 --sources uniform -o data/selected_uniform
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agents.benchmark.testsets import DEV_SEED, TEST_SEED
from agents.dataset.generate import REJECT_REASONS, DatasetConfig, SampleMaker, new_manifest, parse_part
from agents.dataset.shards import MANIFEST, Manifest, read_shard, sha256, shard_name, write_shard
from agents.match import Matcher
from vital_gym.resources import find_config

SELECTION = "selection.json"  # the model and settings that chose the labels


def select_shard(maker: SampleMaker, matcher: Matcher, indices: range, draws: int, refine: int) -> dict[str, np.ndarray]:
    """Two rows per target of ``indices`` (true label, then selected label), as a shard's arrays."""
    rows: dict[str, list] = {k: [] for k in ("index", "params", "true_params", "label", "distance", "midi_note", "velocity", "source", "logmel")}
    rejected = dict.fromkeys(REJECT_REASONS, 0)
    for k in indices:
        s = maker.render_audible(k, rejected)
        result = matcher.match(s.result.audio, s.note, s.velocity, refine_budget=refine, seed=k, draws=draws)
        logmel = maker.quantised_logmel(s.result.audio)
        for label, params, d in ((0, s.x, 0.0), (1, result.x, result.distance)):
            for key, v in zip(rows, (k, params, s.x, label, d, s.note, s.velocity, s.source, logmel)):
                rows[key].append(v)
    arrays = {
        "index": np.array(rows["index"], dtype=np.int64),
        "params": np.stack(rows["params"]).astype(np.float32),
        "true_params": np.stack(rows["true_params"]).astype(np.float32),
        "label": np.array(rows["label"], dtype=np.int8),
        "distance": np.array(rows["distance"], dtype=np.float32),
        "midi_note": np.array(rows["midi_note"], dtype=np.int16),
        "velocity": np.array(rows["velocity"], dtype=np.float32),
        "source": np.array(rows["source"], dtype=np.int16),
        "logmel": np.stack(rows["logmel"]),
    }
    arrays["discrete"] = np.stack([maker.discrete_indices(p) for p in arrays["params"]]).astype(np.int16)
    arrays["rejected"] = np.array([rejected[r] for r in REJECT_REASONS], dtype=np.int64)
    return arrays


def run(args: argparse.Namespace) -> int:
    """``vital-gym dataset select`` (its flags: :func:`agents.cli.build_parser`)."""
    out = Path(args.out)
    if args.n < 1 or args.shard_size < 1 or args.draws < 0 or args.refine < 0:
        raise ValueError("--n and --shard-size must be >= 1, --draws and --refine >= 0")
    part, parts = (0, 1) if args.part is None else parse_part(args.part)
    config = DatasetConfig.from_yaml(find_config("dataset", args.config))
    if args.seed in (TEST_SEED, DEV_SEED, config.seed):
        raise ValueError(f"--seed {args.seed} is the benchmark's, the development set's or the training data's seed; choose another")
    if args.sources:
        unknown = [n for n in args.sources if n not in config.sources]
        if unknown:
            raise ValueError(f"--sources {' '.join(unknown)}: not a source of {args.config} (it has {', '.join(config.sources)})")
        config = dataclasses.replace(config, sources={n: config.sources[n] for n in dict.fromkeys(args.sources)})
    config = dataclasses.replace(config, seed=args.seed, shard_size=2 * args.shard_size, audio_sample_rate=None)

    matcher = Matcher(args.checkpoint)
    maker = SampleMaker(config)
    if maker.space.fingerprint != matcher.space.fingerprint:
        raise ValueError(f"--config {args.config}: its space '{maker.space.name}' is not the model's '{matcher.space.name}'")
    out.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(config, 2 * args.n)
    selection = {"checkpoint": str(args.checkpoint or "the shipped model"), "draws": args.draws, "refine": args.refine}
    if (out / MANIFEST).is_file():
        old = Manifest.load(out)
        old_selection = json.loads((out / SELECTION).read_text()) if (out / SELECTION).is_file() else None
        if (old.config, old.num_samples, old_selection) != (manifest.config, manifest.num_samples, selection):
            raise ValueError(f"{out} holds targets selected with other settings; choose another --out")
        manifest = old
    else:  # the settings first, so that --part runs and the final run agree on them
        (out / SELECTION).write_text(json.dumps(selection, indent=1))
        manifest.save(out)
    for shard in tqdm(range(part, manifest.num_shards, parts), unit="shard", disable=args.quiet):
        name = shard_name(shard)
        path = out / name
        rows = manifest.shard_range(shard)
        digest = sha256(path) if path.is_file() else None
        if digest is not None and (manifest.shards.get(name) == digest or whole(path, rows)):
            manifest.shards[name] = digest  # ours, or written by a --part run
            continue
        targets = range(rows.start // 2, rows.stop // 2)
        start = time.perf_counter()
        arrays = select_shard(maker, matcher, targets, args.draws, args.refine)
        digest = write_shard(path, arrays)
        if args.part is None:
            manifest.shards[name] = digest
            manifest.save(out)
        selected = arrays["distance"][arrays["label"] == 1]
        tqdm.write(
            f"{name}: targets {targets.start}-{targets.stop - 1}, selected distance {selected.mean():.3f}, "
            f"{(time.perf_counter() - start) / len(targets):.2f} s per target"
        )
    if args.part is None:
        manifest.save(out)
        print(f"{out}: {manifest.num_samples} rows ({args.n} targets)")
    return 0


def whole(path: Path, rows: range) -> bool:
    """Whether the shard at ``path`` holds exactly the rows ``rows`` (two per target), readable."""
    try:
        index = read_shard(path, ("index",))["index"]
    except Exception:  # cut short: made again
        return False
    return np.array_equal(index, np.repeat(np.arange(rows.start // 2, rows.stop // 2), 2))
