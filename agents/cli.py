"""The ``vital-gym`` command: one entry point for every workflow.

    vital-gym match target.wav -o out.vital                 # audio in, Vital preset out
    vital-gym match clips/ -o matches/                      # a folder: every file, and matches.csv
    vital-gym describe preset.vital
    vital-gym render preset.vital -o preset.wav --note 48
    vital-gym dataset generate --config core --n 100000 -o data/core
    vital-gym dataset verify data/core
    vital-gym train --config supervised_cpu --dataset data/core -o runs/supervised
    vital-gym critic data --seed 11 --n 800 -o data/critic_s11
    vital-gym critic train --data data/critic_s11 -o runs/critic
    vital-gym ppo --config ppo --checkpoint runs/supervised/best -o runs/ppo
    vital-gym benchmark --dataset data/core
    vital-gym compare main=docs/benchmarks/items.csv --reference main:nearest

The same flag means the same thing everywhere: ``-o/--out`` is what a command writes, ``--config`` the
command's own config (a shipped name or a YAML path, :mod:`vital_gym.resources`), ``--n`` how many items
to make, ``--seed`` the seed, ``--workers`` the processes or threads, ``--part I/N`` that this run is
process I of N working side by side, and ``-q`` silences progress bars. Heavy modules are imported by
the command that needs them, so ``vital-gym match`` runs without the training extras installed.

Exit status: 0 on success, 2 on bad input (a clear message naming it, on standard error), 1 where a
check fails (``dataset verify``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any


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


def _labelled(spec: str) -> tuple[str, Path] | None:
    """A ``LABEL=PATH`` argument split in two, or None when either side is missing."""
    label, sep, path = spec.partition("=")
    return (label, Path(path)) if sep and label and path else None


# ---------------------------------------------------------------------------------------------- dataset
def _generate(args: argparse.Namespace) -> int:
    from agents.dataset.generate import DatasetConfig, generate
    from vital_gym.resources import find_config

    overrides = {
        "space": args.space,
        "seed": args.seed,
        "shard_size": args.shard_size,
        "observation": key_values(args.observation, "--observation"),
    }
    config = (
        DatasetConfig.from_yaml(find_config("dataset", args.config), **overrides)
        if args.config
        else DatasetConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    )
    # --workers: processes here (default one per core), or on Ray the shards made at once (default one per CPU)
    manifest = generate(config, args.out, args.n, workers=args.workers or None, progress=not args.quiet, cluster=_cluster(args.ray))
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
    manifest = refeature(args.folder, args.out, observation, workers=args.workers or default_workers(), progress=not args.quiet)
    print(f"{args.out}: {len(manifest.shards)} shards of {args.folder} with observation {observation}")
    return 0


def _select(args: argparse.Namespace) -> int:
    from agents.dataset.select import run

    return run(args)


def _voice(args: argparse.Namespace) -> int:
    from agents.dataset.voice import make_voice_set

    paths = make_voice_set(args.out)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------- training
def _train(args: argparse.Namespace) -> int:
    from agents.supervised.train import TrainConfig, train
    from vital_gym.resources import find_config

    dataset = args.dataset[0] if args.dataset and len(args.dataset) == 1 else args.dataset
    config = TrainConfig.from_yaml(
        find_config("train", args.config) if args.config else None,
        dataset=dataset,
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        device=args.device,
        init_from=args.init_from,
        seed=args.seed,
    )
    best = train(config, resume=args.resume, progress=not args.quiet)
    print(f"best checkpoint: {best}")
    return 0


def _critic_data(args: argparse.Namespace) -> int:
    from agents.supervised.critic_data import run

    return run(args)


def _critic_train(args: argparse.Namespace) -> int:
    from agents.supervised.train_critic import run

    return run(args)


def _ppo(args: argparse.Namespace) -> int:
    from agents.ppo.train import RLConfig, train
    from vital_gym.resources import find_config

    config = RLConfig.from_yaml(
        find_config("rl", args.config),
        n_timesteps=args.steps,
        algo=args.algo,
        out=args.out,
        seed=args.seed,
        eval_every=args.eval_every,
        n_eval=args.n_eval,
    )
    if args.checkpoint:
        config.policy_kwargs = {**config.policy_kwargs, "checkpoint": None if args.checkpoint == "none" else args.checkpoint}
    if args.targets:
        config.env_kwargs = {**config.env_kwargs, "targets": args.targets}
    cluster = _cluster(args.ray)
    if cluster is not False:
        config.vec, config.ray_address = "ray", cluster if isinstance(cluster, str) else None
    train(config, progress=not args.quiet)
    return 0


def _curves(args: argparse.Namespace) -> int:
    from agents.ppo.curves import plot, read_history, table

    runs = {}
    for spec in args.run:
        labelled = _labelled(spec)
        if labelled is None:
            raise ValueError(f"--run {spec!r}: expected LABEL=FOLDER")
        runs.setdefault(labelled[0], []).append(read_history(labelled[1]))  # one label, several seeds
    print(table(runs))
    print(f"wrote {plot(runs, args.out, args.title)}")
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agents.dataset.generate import DatasetConfig
    from agents.supervised.sensitivity import SENSITIVITY_SEED, measure_sensitivity
    from vital_gym.params import ParameterSpace
    from vital_gym.resources import find_config

    config = DatasetConfig.from_yaml(find_config("dataset", args.config))
    if args.audible_only:  # a file measured before the shares were recorded
        from agents.supervised.sensitivity import Sensitivity, with_audible_shares

        space = ParameterSpace.from_spec(config.space)
        path = with_audible_shares(Sensitivity.load(args.out, space), config).save(args.out)
        print(f"wrote {path}: audible shares added, distances kept")
        return 0
    with tqdm(total=args.n, unit="preset", disable=args.quiet) as bar:
        s = measure_sensitivity(config, args.n, args.step, SENSITIVITY_SEED if args.seed is None else args.seed, lambda: bar.update(1))
    path = s.save(args.out)
    top = sorted(s.values.items(), key=lambda kv: -kv[1])[:10]
    print(f"wrote {path}; most sensitive: " + ", ".join(f"{k} {v:.3f}" for k, v in top))
    return 0


def _standalone(args: argparse.Namespace) -> int:
    from agents.supervised.checkpoint import MODEL_FILE, standalone

    source = Path(args.folder) / MODEL_FILE
    out = standalone(args.folder, args.out, args.base_encoder) / MODEL_FILE
    print(f"wrote {out}: every weight, {out.stat().st_size / 1e6:.1f} MB ({source}: {source.stat().st_size / 1e6:.1f} MB)")
    return 0


def _neighbours(args: argparse.Namespace) -> int:
    from agents.neighbours import NEIGHBOURS_FILE, DatasetNeighbours
    from agents.supervised.checkpoint import load_model
    from vital_gym.features import MelConfig

    model, space, meta = load_model(args.folder)
    out = Path(args.out) if args.out else Path(args.folder) / NEIGHBOURS_FILE
    index = DatasetNeighbours.build(args.dataset, model, space, MelConfig.from_dict(meta.get("observation")), args.max_samples, progress=not args.quiet)
    index.save(out)
    print(f"wrote {out}: {len(index)} samples of {args.dataset}, {out.stat().st_size / 1e6:.1f} MB")
    return 0


# ---------------------------------------------------------------------------------------------- evaluation
def _benchmark(args: argparse.Namespace) -> int:
    from agents.benchmark.run import BenchmarkConfig, rewrite_report, run_benchmark

    fields = {
        "dataset_config": args.config,
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
        "ray": _cluster(args.ray),
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    config = BenchmarkConfig.quick(**fields) if args.quick else BenchmarkConfig(**fields)
    if args.report_only:
        print(f"report: {rewrite_report(config)}")
        return 0
    _, report = run_benchmark(config, progress=not args.quiet)
    print(f"report: {report}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from agents.benchmark.compare import compare

    sources = {}
    for spec in args.csv:
        labelled = _labelled(spec)
        if labelled is None or not labelled[1].is_file():
            raise ValueError(f"{spec!r}: give LABEL=PATH of an existing items.csv")
        sources[labelled[0]] = labelled[1]
    print(compare(sources, args.reference, args.metric, args.by_source))
    return 0


def _match(args: argparse.Namespace) -> int:
    from agents.library import shipped_library_dir
    from agents.match import DEFAULT_DRAWS, FAST, Matcher, audio_files, check_no_target_overwritten, match_files

    files, batch = audio_files(args.targets)
    out = Path(args.out)
    if not batch and out.suffix != ".vital":
        raise ValueError(f"-o {out}: one target is written as a .vital file (a .wav and .png go beside it)")
    if batch and out.suffix:
        raise ValueError(f"-o {out}: several targets are written into a folder, not a file")
    if not batch:
        check_no_target_overwritten(files, [out])
    if args.fast:  # what --fast sets, unless given
        args.draws = FAST["draws"] if args.draws is None else args.draws
        args.library_shortlist = FAST["library_shortlist"] if args.library_shortlist is None else args.library_shortlist
        args.neighbours = FAST["neighbours"] if args.neighbours is None else args.neighbours
    library = None
    if args.library_shortlist != 0:
        library = [*([] if args.no_shipped_library else [shipped_library_dir()]), *(args.library or [])]
    matcher = Matcher(
        args.checkpoint,
        screen=not args.no_screen,
        base_encoder=args.base_encoder,
        render_workers=args.workers,
        critic=args.critic,
        library=library or None,
        library_shortlist=args.library_shortlist,
        neighbours=args.neighbours_index or True,
        neighbour_count=args.neighbours,
        progress=not args.quiet,
    )
    settings = dict(
        midi_note=args.note,
        velocity=args.velocity,
        refine_budget=args.refine,
        seed=args.seed,
        select=not args.top_score,
        draws=DEFAULT_DRAWS if args.draws is None else args.draws,
    )
    if not batch:
        result = matcher.match(matcher.load_target(files[0]), **settings)
        paths = matcher.write(result, out)
        print(f"wrote {', '.join(str(p) for p in paths)}")
        print(result.summary(given_note=args.note is not None))
        print()
        print(result.description)
        return 0
    rows = match_files(matcher, files, out, progress=not args.quiet, **settings)
    failed = [r for r in rows if r.error]
    for r in failed:
        print(f"vital-gym: error: {r.error}", file=sys.stderr)
    print(f"matched {len(rows) - len(failed)} of {len(rows)} files into {out} (table: {out / 'matches.csv'})")
    return 2 if len(failed) == len(rows) else 0


def _render(args: argparse.Namespace) -> int:
    from vital_gym.audio import write_wav
    from vital_gym.preset import Preset
    from vital_gym.render import RenderConfig, Renderer

    out = Path(args.out)
    if out.suffix != ".wav":
        raise ValueError(f"-o {out}: the render is written as a .wav file")
    config = RenderConfig(midi_note=args.note, velocity=args.velocity, note_seconds=args.note_seconds, render_seconds=args.seconds, channels=args.channels)
    rendered = Renderer(config).render(Preset.load(args.preset))
    write_wav(out, rendered.audio, config.sample_rate)
    loud = "silent" if rendered.status.silent else f"RMS {rendered.status.rms:.3f}" + (", clipped" if rendered.status.clipped else "")
    print(f"wrote {out}: note {args.note}, {args.seconds} s, {loud}")
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


def _wavetables_build(args: argparse.Namespace) -> int:
    from vital_gym.wavetables import build_bank, describe_bank

    out = Path(args.out)
    if out.suffix != ".npz":
        raise ValueError(f"--out {out}: a wavetable bank is a .npz file")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"--out {out} exists (pass --overwrite to replace it)")
    bank, skipped = build_bank(args.folder, name=out.stem, generated=not args.no_generated)
    for message in skipped:
        warnings.warn(f"skipped {message}", stacklevel=1)
    bank.save(out)
    print(f"wrote {out}: {describe_bank(bank)}")
    return 0


def _wavetables_list(args: argparse.Namespace) -> int:
    from vital_gym.wavetables import describe_bank, load_bank

    bank = load_bank(args.bank)
    print(describe_bank(bank))
    for i, table in enumerate(bank):
        print(f"{i:4d}  {table.name}  ({len(table.frames)} key frames, {table.source})")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def _out(parser: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    parser.add_argument("-o", "--out", required=required, help=help)


def _ray(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help=f"{what} on a Ray cluster: ADDRESS ('auto', 'ray://HOST:10001'), or none to start Ray here (needs vital-gym[ray])",
    )


def _cluster(ray: str | None) -> bool | str:
    """``--ray [ADDRESS]`` as the commands take it: False without it, True for a Ray started here, or the address."""
    return False if ray is None else ray or True


def _add_critic_choice(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--critic",
        metavar="DIR",
        default=True,
        help=f"a candidate critic trained for the model (default: the model folder's own, if it has one): {what}",
    )
    parser.add_argument("--no-critic", dest="critic", action="store_false", help="render the first drawn candidates, not a critic's choice")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vital-gym")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``vital-gym`` argument parser: every subcommand and its flags."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    parser = argparse.ArgumentParser(
        prog="vital-gym",
        description="vital-gym: inverse synthesis on the Vital synthesizer",
        epilog="See docs/cli.md for every workflow.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group, name: str, help: str, func) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=func)
        return p

    # match, describe
    match = command(sub, "match", "find a Vital preset that recreates an audio clip (or every clip of a folder)", _match)
    match.add_argument("targets", nargs="+", metavar="TARGET", help="audio files (wav/flac/ogg, one note each) or folders of them")
    _out(match, "one target: the .vital to write (a .wav and .png go beside it); several or a folder: the output folder, with matches.csv")
    match.add_argument("--checkpoint", help="a trained model folder (default: the shipped model)")
    match.add_argument("--base-encoder", help="an adapter checkpoint's base encoder file, where it is now (default: where the checkpoint recorded it)")
    match.add_argument("--note", type=int, help="MIDI note to render at (default: each target's estimated pitch)")
    match.add_argument("--velocity", type=float, default=0.7)
    match.add_argument("--refine", type=int, default=0, metavar="RENDERS", help="CMA-ES refinement through Vita with this many renders")
    match.add_argument("--seed", type=int, default=0, help="seeds the drawn candidates and the refinement")
    match.add_argument("--draws", type=int, metavar="N", help="presets drawn per hypothesis and rendered (default 2; 0: the hypotheses only)")
    _add_critic_choice(match, "it chooses which drawn candidates are rendered")
    match.add_argument(
        "--library",
        action="append",
        metavar="DIR",
        help="a folder of your own .vital presets (recursive; repeat for several), tried beside the shipped library; indexed once and cached",
    )
    match.add_argument("--no-shipped-library", action="store_true", help="leave out the presets shipped with vital-gym (agents/library)")
    match.add_argument(
        "--library-shortlist",
        type=int,
        metavar="K",
        help="library presets nearest the target by sound rendered beside the model's candidates (default: agents.library.DEFAULT_SHORTLIST, 16; 0: no library)",
    )
    match.add_argument(
        "--neighbours",
        type=int,
        metavar="K",
        help="training samples nearest the target by sound rendered beside the model's candidates, where the model has a "
        "dataset index (default: agents.neighbours.DEFAULT_NEIGHBOURS, 8; 0: none)",
    )
    match.add_argument(
        "--neighbours-index", metavar="FILE", help="a dataset index for the model (vital-gym checkpoint neighbours; default: the model folder's)"
    )
    match.add_argument("--fast", action="store_true", help="fewer candidates: --draws 0 --library-shortlist 1 --neighbours 1 (agents.match.FAST), unless given")
    match.add_argument("--no-screen", action="store_true", help="rank the candidates on exact renders, not screening ones (slower)")
    match.add_argument("--workers", type=int, metavar="N", help="threads rendering candidates side by side (default: one per core, at most 4)")
    match.add_argument("--top-score", action="store_true", help="keep the best-scored hypothesis unrendered instead of rendering all candidates")

    render = command(sub, "render", "render a .vital preset to a .wav through Vita", _render)
    render.add_argument("preset", help="a .vital file")
    _out(render, "the .wav to write")
    render.add_argument("--note", type=int, default=60, help="MIDI note (default 60)")
    render.add_argument("--velocity", type=float, default=0.7)
    render.add_argument("--note-seconds", type=float, default=1.5, help="how long the key is held (default 1.5)")
    render.add_argument("--seconds", type=float, default=2.0, help="how much audio is written (default 2; the release follows the note)")
    render.add_argument("--channels", type=int, default=2, choices=(1, 2), help="2: Vital's stereo output (default); 1: its mono mix")

    describe = command(sub, "describe", "describe a .vital preset in plain language", _describe)
    describe.add_argument("preset", help="a .vital file")
    describe.add_argument("--space", default="core", help="the parameter space (name or YAML) whose parameters are described (default core)")

    wavetables = sub.add_parser("wavetables", help="wavetable banks: the tables a space's oscillators choose from")
    wt = wavetables.add_subparsers(dest="action", required=True, metavar="ACTION")
    wbuild = command(wt, "build", "make a bank from a folder of .vitaltable files (recursive), after the generated tables", _wavetables_build)
    wbuild.add_argument("folder", help="a folder of .vitaltable files (unreadable ones are skipped with a warning)")
    _out(wbuild, "the bank to write (.npz); a space names it as `wavetables: PATH`")
    wbuild.add_argument("--no-generated", action="store_true", help="only the folder's tables, not vital-gym's generated ones")
    wbuild.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    wlist = command(wt, "list", "list a bank's tables", _wavetables_list)
    wlist.add_argument("bank", nargs="?", default="studio", help="a shipped bank name or a .npz path (default studio)")

    # dataset
    dataset = sub.add_parser("dataset", help="generate, check and select (audio, parameters) datasets")
    ds = dataset.add_subparsers(dest="action", required=True, metavar="ACTION")
    gen = command(ds, "generate", "generate a dataset, or resume one", _generate)
    gen.add_argument("--config", help="a dataset config: a shipped name (core) or a YAML path")
    gen.add_argument("--space", help="parameter space name or YAML (overrides the config's)")
    gen.add_argument("--n", type=int, required=True, help="number of samples")
    _out(gen, "output folder (run the same command again to resume)")
    gen.add_argument("--workers", type=int, default=0, help="processes (default: one per core); with --ray, shards made at once")
    _ray(gen, "make the shards as Ray tasks")
    gen.add_argument("--seed", type=int, help="overrides the config's seed")
    gen.add_argument("--shard-size", type=int, help="samples per shard (overrides the config's)")
    gen.add_argument("--observation", nargs="+", metavar="KEY=VALUE", help="observation settings instead of the config's, e.g. frontend=audiomae")
    ver = command(ds, "verify", "check every shard against the manifest's checksums", _verify)
    ver.add_argument("folder")
    feat = command(ds, "features", "copy a dataset with other observations, computed from its stored audio", _features)
    feat.add_argument("folder", help="the dataset to read (it must store audio)")
    _out(feat, "the new dataset's folder (run the same command again to resume)")
    feat.add_argument("--observation", nargs="+", required=True, metavar="KEY=VALUE", help="observation settings, e.g. frontend=audiomae")
    feat.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    sel = command(ds, "select", "targets labelled with the matcher's own closest candidate (expert iteration)", _select)
    sel.add_argument("--checkpoint", help="the model whose candidates label the targets (default: the shipped model)")
    sel.add_argument("--config", default="core", help="the dataset config the targets are drawn from (default core)")
    sel.add_argument("--n", type=int, required=True, help="targets (each written twice: true and selected label)")
    sel.add_argument("--seed", type=int, default=1, help="the targets' seed (not the training data's or the benchmark's)")
    sel.add_argument("--sources", nargs="+", metavar="NAME", help="draw from these sources of the config only, weighted as there")
    sel.add_argument("--draws", type=int, default=2, help="presets drawn per hypothesis (default 2)")
    sel.add_argument("--refine", type=int, default=0, metavar="RENDERS", help="CMA-ES renders after the selection (0: none)")
    sel.add_argument("--shard-size", type=int, default=100, help="targets per shard (a shard holds twice as many rows)")
    sel.add_argument("--part", help="I/N: this run is process I of N side by side; a final run without --part writes the manifest")
    _out(sel, "the dataset folder (run the same command again to resume)")
    voice = command(ds, "voice", "make a voice-like target set with espeak-ng: sustained vowels and hums", _voice)
    _out(voice, "output folder (created)")

    # training
    train = command(sub, "train", "train the supervised sound matcher on a dataset", _train)
    train.add_argument("--config", help="a training config: a shipped name (supervised_cpu) or a YAML path")
    train.add_argument("--dataset", nargs="+", help="a dataset folder, or several trained on as one")
    _out(train, "the run's folder (checkpoints, TensorBoard logs)", required=False)
    train.add_argument("--steps", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--device", help="cpu, cuda, ... (default: cuda where available)")
    train.add_argument("--seed", type=int)
    train.add_argument("--resume", action="store_true", help="carry on from OUT/last")
    train.add_argument("--init-from", metavar="CHECKPOINT", help="start from this checkpoint's weights (a model folder)")

    critic = sub.add_parser("critic", help="the candidate critic: its rendered pools and its training")
    cr = critic.add_subparsers(dest="action", required=True, metavar="ACTION")
    cdata = command(cr, "data", "render candidate pools: a critic's training data", _critic_data)
    cdata.add_argument("--checkpoint", help="the model whose candidates are rendered (default: the shipped model)")
    cdata.add_argument("--config", default="core", help="the dataset config the targets are drawn from (default core)")
    cdata.add_argument("--seed", type=int, required=True, help="the targets' seed (not the training data's or the benchmark's)")
    cdata.add_argument("--n", type=int, required=True, help="targets, over all parts")
    cdata.add_argument("--draws", type=int, default=12, help="drawn candidates per hypothesis: the pool (default 12)")
    _out(cdata, "the pools' folder (run the same command again to resume)")
    cdata.add_argument("--part", default="0/1", help="I/N: this run is process I of N side by side (default 0/1)")
    cdata.add_argument("--save-every", type=int, default=2, help="targets between saves")
    ctrain = command(cr, "train", "train a critic on rendered pools (or cross-validate, or evaluate one)", _critic_train)
    ctrain.add_argument("--config", help="a YAML of critic training settings; the flags below override it")
    ctrain.add_argument("--data", nargs="+", help="pool folders made by vital-gym critic data")
    _out(ctrain, "the critic's folder", required=False)
    ctrain.add_argument("--checkpoint", help="the model the pools were made with (default: the shipped model)")
    ctrain.add_argument("--steps", type=int)
    ctrain.add_argument("--seed", type=int)
    what = ctrain.add_mutually_exclusive_group()
    what.add_argument("--folds", type=int, help="cross-validate the settings over N folds instead (nothing saved)")
    what.add_argument("--evaluate", metavar="CRITIC", help="evaluate this trained critic on --data instead")
    ctrain.add_argument("--items", metavar="CSV", help="also write each held-out target's figures as a benchmark items.csv (for vital-gym compare)")

    ppo = command(sub, "ppo", "fine-tune the supervised policy with PPO (or TRPO) on VitalMatch-v0", _ppo)
    ppo.add_argument("--config", default="ppo", help="an RL config: a shipped name (ppo, trpo) or a YAML path (default ppo)")
    ppo.add_argument("--checkpoint", help="the supervised model to start from (default: the config's); 'none' for PPO from scratch")
    ppo.add_argument("--targets", help="'random', 'dataset:CONFIG', 'audio:DIR' or 'presets:DIR' (overrides the config's)")
    ppo.add_argument("--steps", type=int, help="environment steps (the config's n_timesteps)")
    ppo.add_argument("--algo", help="ppo or trpo (overrides the config's)")
    _out(ppo, "the run's folder", required=False)
    ppo.add_argument("--seed", type=int)
    ppo.add_argument("--eval-every", type=int, help="environment steps between held-out evaluations")
    ppo.add_argument("--n-eval", type=int, help="held-out targets per evaluation")
    _ray(ppo, "run the environments in Ray actors")
    curves = command(sub, "curves", "plot the held-out learning curves of PPO runs", _curves)
    curves.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="LABEL=FOLDER",
        help="a finished run (repeat for several; runs of one label are seeds, drawn as mean and range)",
    )
    _out(curves, "the PNG to write")
    curves.add_argument("--title", default="PPO on VitalMatch-v0: held-out evaluation")

    sens = command(sub, "sensitivity", "measure how much each parameter moves the sound (loss weights for training)", _sensitivity)
    sens.add_argument("--config", required=True, help="a dataset config: the space, render settings and how presets are drawn")
    sens.add_argument("--n", type=int, default=48, help="presets to measure on; each costs one render per parameter (default 48)")
    sens.add_argument("--step", type=float, default=0.1, help="how far a continuous parameter moves, in normalised units")
    sens.add_argument("--seed", type=int, help="preset seed (default: one reserved for sensitivity)")
    _out(sens, "the JSON to write (training configs name it as `sensitivity`)")
    sens.add_argument(
        "--audible-only", action="store_true", help="add to OUT, measured with this config, the share of presets where each parameter's module was on"
    )

    ckpt = sub.add_parser("checkpoint", help="trained model checkpoints")
    ck = ckpt.add_subparsers(dest="action", required=True, metavar="ACTION")
    alone = command(ck, "standalone", "copy an adapter checkpoint with its base encoder's weights written in", _standalone)
    alone.add_argument("folder", help="a checkpoint folder (model.safetensors + config.json)")
    _out(alone, "the new checkpoint folder (must not exist)")
    alone.add_argument("--base-encoder", help="the base encoder file, where it is now (default: where the checkpoint recorded it)")
    near = command(ck, "neighbours", "index a model's training dataset by sound, for vital-gym match's candidates", _neighbours)
    near.add_argument("folder", help="a checkpoint folder")
    near.add_argument("--dataset", required=True, help="a dataset of the model's space and log-mel settings")
    near.add_argument("--max-samples", type=int, help="index only the first N samples (whole shards in order): a smaller file to ship")
    _out(near, "the index to write (default: FOLDER/neighbours.npz, which vital-gym match loads with the model)", required=False)

    # evaluation
    bench = command(sub, "benchmark", "compare methods on fixed test sets (writes OUT/benchmarks.md)", _benchmark)
    bench.add_argument("--quick", action="store_true", help="a handful of items, no Syntheon")
    bench.add_argument("--config", help="the dataset config giving the space, render settings and synthetic sampling (default core)")
    bench.add_argument("--sets", help="comma-separated: synthetic,human,voice (default: all with a folder)")
    bench.add_argument(
        "--methods",
        help="comma-separated: init, random, mean, nearest, nearest+refine, library, shipped-library, supervised, supervised-top, "
        "supervised+refine, supervised+library, supervised+library+refine, supervised+neighbours, supervised+neighbours+library, "
        "supervised+neighbours+library+refine, ppo, syntheon (default: all that can be set up)",
    )
    bench.add_argument("--n-synthetic", type=int, help="synthetic items (default 200)")
    bench.add_argument(
        "--synthetic-seed", type=int, help="draw the synthetic items from this seed instead of the test seed: a fresh set for a re-test (use a new --out)"
    )
    bench.add_argument("--limit", type=int, help="at most this many human and voice items")
    bench.add_argument("--presets", help="folder of .vital files: the human set (default ../shared/presets)")
    bench.add_argument("--audio", help="folder of audio files: the voice set")
    bench.add_argument("--library", help="library lookup's folder of .vital files (default: --presets, leave-one-out)")
    bench.add_argument("--dataset", help="a generated dataset for the mean preset and nearest neighbour")
    bench.add_argument("--checkpoint", help="a trained model for the supervised methods (default: the shipped one)")
    bench.add_argument("--refine-budget", type=int, help="renders per item for supervised+refine and nearest+refine (default 100)")
    bench.add_argument("--draws", type=int, help="presets drawn per hypothesis by the supervised methods (default 2; 0: hypotheses only)")
    _add_critic_choice(bench, "supervised and supervised+refine render the draws it ranks first")
    bench.add_argument("--policy", help="a policy saved by vital-gym ppo (runs/ppo/best) for method ppo")
    bench.add_argument("--syntheon-python", help="python of Syntheon's venv (default .syntheon-venv/bin/python)")
    bench.add_argument("--clap-checkpoint", help="a local CLAP checkpoint: adds CLAP similarity")
    bench.add_argument("--keep-previous", action="store_true", help="merge into OUT's earlier results: the methods run now replace their rows")
    bench.add_argument("--report-only", action="store_true", help="rebuild the report and charts from OUT's records; run nothing")
    _ray(bench, "evaluate every item as a Ray task")
    _out(bench, "where benchmarks.md, benchmarks/items.csv and img/ go (default docs)", required=False)

    compare = command(sub, "compare", "paired comparison of benchmark methods, item by item", _compare)
    compare.add_argument("csv", nargs="+", metavar="LABEL=PATH", help="a benchmark items.csv, labelled")
    compare.add_argument("--reference", required=True, metavar="LABEL:METHOD", help="the method every other one is compared with")
    compare.add_argument("--metric", default="mrstft", help="the items.csv column compared (default mrstft)")
    compare.add_argument("--by-source", action="store_true", help="split each set by its items' source")
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as a user reads it: what happened, without the source line that raised it."""
    print(f"vital-gym: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = "vital-gym " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    with warnings.catch_warnings():  # the filters and the display below last for this command only
        # Vital switches the CPU to flush-denormals mode; numpy then warns once about float32's smallest subnormal.
        warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except (ValueError, FileNotFoundError, FileExistsError) as e:  # AudioFileError, CheckpointError, PresetError are ValueErrors
            print(f"vital-gym: error: {e}", file=sys.stderr)
            return 2
        except ModuleNotFoundError as e:  # an optional extra
            extra = {"stable_baselines3": "train", "sb3_contrib": "train", "tensorboard": "train", "laion_clap": "clap", "transformers": "clap", "ray": "ray"}
            if e.name not in extra:
                raise
            print(f"vital-gym: error: {args.command} needs {e.name}: pip install 'vital-gym[{extra[e.name]}]'", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
