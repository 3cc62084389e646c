"""The ``vital-gym`` command.

    vital-gym dataset generate --config configs/dataset/core.yaml --n 100000 --out data/core --workers 2
    vital-gym dataset generate --config configs/dataset/core.yaml --n 100000 --out data/core_audiomae --observation frontend=audiomae
    vital-gym dataset verify data/core
    vital-gym dataset features data/core --out data/core_audiomae --observation frontend=audiomae
    vital-gym benchmark --presets ../shared/presets --audio data/voice --dataset data/core
    vital-gym match target.wav -o out.vital [--checkpoint DIR] [--refine 200]
    vital-gym checkpoint standalone runs/supervised_audiomae/best --out models/audiomae_lora
    vital-gym describe preset.vital [--space core]
    vital-gym sensitivity --config configs/dataset/core.yaml --presets 48 --out configs/sensitivity/core.json
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the Hugging Face hub


def key_values(pairs: list[str] | None, flag: str) -> dict[str, Any] | None:
    """Command-line ``KEY=VALUE`` pairs as a dict, values read as YAML (numbers, strings, null); None when
    none are given. ``flag`` names the option in the error a pair without ``=`` gets."""
    import yaml

    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def _generate(args: argparse.Namespace) -> int:
    from agents.dataset.generate import DatasetConfig, default_workers, generate

    overrides = {
        "space": args.space, "seed": args.seed, "shard_size": args.shard_size,
        "observation": key_values(args.observation, "--observation"),
    }
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


def _features(args: argparse.Namespace) -> int:
    from agents.dataset.generate import default_workers
    from agents.dataset.refeature import refeature

    observation = key_values(args.observation, "--observation")
    manifest = refeature(args.folder, args.out, observation, workers=args.workers or default_workers())
    print(f"{args.out}: {len(manifest.shards)} shards of {args.folder} with observation {observation}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from agents.benchmark.run import BenchmarkConfig, rewrite_report, run_benchmark

    fields = {
        "dataset_config": args.dataset_config,
        "sets": tuple(args.sets.split(",")) if args.sets else None,
        "methods": tuple(args.methods.split(",")) if args.methods else None,
        "n_synthetic": args.n_synthetic,
        "synthetic_seed": args.synthetic_seed,
        "limit": args.limit,
        "presets": args.presets,
        "audio": args.audio,
        "library": args.library,
        "dataset": args.dataset,
        "checkpoint": args.checkpoint,
        "refine_budget": args.refine_budget,
        "draws": args.draws,
        "critic": args.critic,
        "policy": args.policy,
        "syntheon_python": args.syntheon_python,
        "clap_checkpoint": args.clap_checkpoint,
        "out": args.out,
        "keep_previous": args.keep_previous or None,
        "command": args.command_line,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    config = BenchmarkConfig.quick(**fields) if args.quick else BenchmarkConfig(**fields)
    if args.report_only:
        print(f"report: {rewrite_report(config)}")
        return 0
    _, report = run_benchmark(config)
    print(f"report: {report}")
    return 0


def _match(args: argparse.Namespace) -> int:
    from agents.match import DEFAULT_DRAWS, Matcher

    matcher = Matcher(
        args.checkpoint, screen=not args.no_screen, base_encoder=args.base_encoder, render_workers=args.render_workers,
        critic=args.critic,
    )
    target = matcher.load_target(args.target)
    draws = DEFAULT_DRAWS if args.draws is None else args.draws
    result = matcher.match(target, args.note, args.velocity, args.refine, args.seed, select=not args.top_score, draws=draws)
    paths = matcher.write(result, args.output)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    print(f"note {result.midi_note} ({'given' if args.note is not None else 'estimated pitch'}), velocity {result.velocity}")
    print(f"spectral distance: {result.predicted_distance:.4f} (prediction, {result.seconds:.2f} s)")
    if len(result.candidate_distances) > 1:
        ranked = "screening renders" if matcher.screen else "exact renders"
        print(f"  closest of {len(result.candidate_distances)} candidates ranked on {ranked} (there, best-scored hypothesis: {result.candidate_distances[0]:.4f})")
    if result.refined is not None:
        r = result.refined
        print(f"  after refinement: {result.distance:.4f} ({r.renders} renders, {100 * r.gain:.1f}% lower)")
    print()
    print(result.description)
    return 0


def _standalone(args: argparse.Namespace) -> int:
    from agents.supervised.checkpoint import MODEL_FILE, standalone

    source = Path(args.folder) / MODEL_FILE
    out = standalone(args.folder, args.out, args.base_encoder) / MODEL_FILE
    print(f"wrote {out}: every weight, {out.stat().st_size / 1e6:.1f} MB ({source}: {source.stat().st_size / 1e6:.1f} MB)")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from vital_gym.describe import describe_omissions, describe_preset
    from vital_gym.params import ParameterSpace
    from vital_gym.preset import Preset, PresetCodec

    space = ParameterSpace.from_spec(args.space)
    codec = PresetCodec(space)
    preset = Preset.load(args.preset)
    print(describe_preset(space, codec.from_preset(preset), unset="its settings not described"))
    print()
    print(f"({describe_omissions(codec, preset)})")
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agents.dataset.generate import DatasetConfig
    from agents.supervised.sensitivity import SENSITIVITY_SEED, measure_sensitivity
    from vital_gym.params import ParameterSpace

    config = DatasetConfig.from_yaml(args.config)
    if args.audible_only:  # a file measured before the shares were recorded
        from agents.supervised.sensitivity import Sensitivity, with_audible_shares

        space = ParameterSpace.from_spec(config.space)
        path = with_audible_shares(Sensitivity.load(args.out, space), config).save(args.out)
        print(f"wrote {path}: audible shares added, distances kept")
        return 0
    with tqdm(total=args.presets, unit="preset", disable=args.quiet) as bar:
        s = measure_sensitivity(config, args.presets, args.step, SENSITIVITY_SEED if args.seed is None else args.seed, lambda: bar.update(1))
    path = s.save(args.out)
    top = sorted(s.values.items(), key=lambda kv: -kv[1])[:10]
    print(f"wrote {path}; most sensitive: " + ", ".join(f"{k} {v:.3f}" for k, v in top))
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
    gen.add_argument(
        "--observation", nargs="+", metavar="KEY=VALUE",
        help="observation settings instead of the config's, e.g. frontend=audiomae (AudioMAE's filterbank)",
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_generate)
    ver = dataset.add_parser("verify", help="check every shard against the manifest's checksums")
    ver.add_argument("folder")
    ver.set_defaults(func=_verify)
    feat = dataset.add_parser("features", help="copy a dataset with other observations, computed from its stored audio")
    feat.add_argument("folder", help="the dataset to read (it must store audio)")
    feat.add_argument("--out", required=True, help="the new dataset's folder (re-run the same command to resume)")
    feat.add_argument("--observation", nargs="+", required=True, metavar="KEY=VALUE", help="observation settings, e.g. frontend=audiomae")
    feat.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    feat.set_defaults(func=_features)
    bench = sub.add_parser("benchmark", help="compare methods on fixed test sets (writes docs/benchmarks.md)")
    bench.add_argument("--quick", action="store_true", help="a handful of items, no Syntheon (what CI runs)")
    bench.add_argument("--dataset-config", help="dataset YAML giving the space, render settings and sampling")
    bench.add_argument("--sets", help="comma-separated: synthetic,human,voice (default: all with a folder)")
    bench.add_argument("--methods", help="comma-separated: init,random,mean,nearest,nearest+refine,library,supervised,supervised-top,supervised+refine,ppo,syntheon")
    bench.add_argument("--n-synthetic", type=int, help="synthetic items (default 200)")
    bench.add_argument(
        "--synthetic-seed", type=int,
        help="draw the synthetic items from this seed instead of the test seed: a fresh set for a re-test (use a new --out)",
    )
    bench.add_argument("--limit", type=int, help="at most this many human and voice items")
    bench.add_argument("--presets", help="folder of .vital files: the human set (default ../shared/presets)")
    bench.add_argument("--audio", help="folder of audio files: the voice set")
    bench.add_argument("--library", help="library lookup's folder of .vital files (default: --presets)")
    bench.add_argument("--dataset", help="a generated dataset for the mean preset and nearest neighbour")
    bench.add_argument("--checkpoint", help="a trained model for supervised and supervised+refine (default: the shipped one)")
    bench.add_argument("--refine-budget", type=int, help="renders per item for supervised+refine and nearest+refine (default 100)")
    bench.add_argument("--critic", default=True, help="a candidate critic for the model (default: the model folder's own, if it has one): supervised and supervised+refine render the draws it ranks first")
    bench.add_argument("--no-critic", dest="critic", action="store_false", help="supervised and supervised+refine render their first draws, not a critic's choice")
    bench.add_argument("--draws", type=int, help="presets drawn per hypothesis by supervised and supervised+refine (default 2; 0: hypotheses only)")
    bench.add_argument("--policy", help="a policy saved by agents/ppo/train.py (runs/ppo/best) for method ppo")
    bench.add_argument("--syntheon-python", help="python of Syntheon's venv (default .syntheon-venv/bin/python)")
    bench.add_argument("--clap-checkpoint", help="a local CLAP checkpoint: adds CLAP similarity")
    bench.add_argument(
        "--keep-previous", action="store_true",
        help="merge into OUT's earlier results: the methods run now replace their rows, the others keep theirs",
    )
    bench.add_argument("--report-only", action="store_true", help="rebuild the report and charts from OUT's results; run nothing")
    bench.add_argument("--out", help="where docs/benchmarks.md, docs/benchmarks/items.csv, docs/img/ go (default docs)")
    bench.set_defaults(func=_benchmark)
    match = sub.add_parser("match", help="find a Vital preset that recreates an audio clip")
    match.add_argument("target", help="audio file (wav/flac/ogg), one note; the first seconds are used")
    match.add_argument("-o", "--output", required=True, help="the .vital to write (a .wav and .png go beside it)")
    match.add_argument("--checkpoint", help="a trained model folder (default: the shipped model)")
    match.add_argument("--base-encoder", help="an adapter checkpoint's base encoder file, where it is now (default: where the checkpoint recorded it)")
    match.add_argument("--note", type=int, help="MIDI note to render at (default: the target's estimated pitch)")
    match.add_argument("--velocity", type=float, default=0.7)
    match.add_argument("--refine", type=int, default=0, help="CMA-ES refinement through Vita with this many renders")
    match.add_argument("--seed", type=int, default=0, help="seeds the drawn candidates and the refinement")
    match.add_argument(
        "--draws", type=int, default=None, metavar="N",
        help="presets drawn per hypothesis from its predictive distributions, all rendered (default: agents.match.DEFAULT_DRAWS, 2; 0: the hypotheses only)",
    )
    match.add_argument(
        "--critic", metavar="DIR", default=True,
        help="a candidate critic trained for the model (default: the model folder's own, if it has one; python -m agents.supervised.train_critic)",
    )
    match.add_argument("--no-critic", dest="critic", action="store_false", help="render the first drawn candidates, not those a critic chooses from a larger pool")
    match.add_argument("--no-screen", action="store_true", help="rank the candidates on exact renders, not screening ones (slower)")
    match.add_argument(
        "--render-workers", type=int, metavar="N",
        help="threads rendering the candidates side by side (default: one per core, at most 4); more are faster on a machine with more cores",
    )
    match.add_argument("--top-score", action="store_true", help="a model with several hypotheses: keep the best-scored one unrendered instead of rendering all")
    match.set_defaults(func=_match)
    ckpt = sub.add_parser("checkpoint", help="trained model checkpoints").add_subparsers(dest="checkpoint_command", required=True)
    alone = ckpt.add_parser("standalone", help="copy an adapter checkpoint with its base encoder's weights written in")
    alone.add_argument("folder", help="a checkpoint folder (model.safetensors + config.json)")
    alone.add_argument("--out", required=True, help="the new checkpoint folder (must not exist)")
    alone.add_argument("--base-encoder", help="the base encoder file, where it is now (default: where the checkpoint recorded it)")
    alone.set_defaults(func=_standalone)

    describe = sub.add_parser("describe", help="describe a .vital preset in plain language, as vital-gym match does its result")
    describe.add_argument("preset", help="a .vital file")
    describe.add_argument("--space", default="core", help="parameter space name or YAML whose parameters are described (default core)")
    describe.set_defaults(func=_describe)
    sens = sub.add_parser("sensitivity", help="measure how much each parameter moves the sound (loss weights for training)")
    sens.add_argument("--config", required=True, help="a dataset YAML: the space, render settings and how presets are drawn")
    sens.add_argument("--presets", type=int, default=48, help="presets to measure on (each costs one render per parameter)")
    sens.add_argument("--step", type=float, default=0.1, help="how far a continuous parameter moves, in normalised units")
    sens.add_argument("--seed", type=int, help="preset seed (default: one reserved for sensitivity)")
    sens.add_argument("--out", required=True, help="the JSON to write (train configs name it as `sensitivity`)")
    sens.add_argument("--quiet", action="store_true", help="no progress bar")
    sens.add_argument(
        "--audible-only", action="store_true",
        help="add to the existing OUT (measured with this config) the share of its presets where each parameter's module was on",
    )
    sens.set_defaults(func=_sensitivity)
    args = parser.parse_args(argv)
    args.command_line = "vital-gym " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:  # AudioFileError, CheckpointError, PresetError are ValueErrors
        print(f"vital-gym: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
