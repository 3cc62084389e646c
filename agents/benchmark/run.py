"""Run the benchmark: test sets x methods -> per-item CSV, a markdown report with 95% CIs, and plots.

    vital-gym benchmark --presets ../shared/presets --audio data/voice --dataset data/core
    vital-gym benchmark --quick --out /tmp/bench          # a handful of items, no Syntheon (what CI runs)

Every method's preset is rendered by Vita with its target's note, velocity and render settings, then
scored by :mod:`agents.benchmark.metrics`. A method that cannot be set up (no dataset, no Syntheon venv)
is left out with the reason in the report; a method that fails on an item is a failure for that item.

On Ray (``ray``; ``vital-gym benchmark --ray [ADDRESS]``) every item of every method but Syntheon (one
batch, run here) is a Ray task of ``render_workers`` CPUs; a Ray worker process builds each method once
(the model loaded once) and keeps it. An item's result depends on nothing evaluated before it (the
screening synths start fresh for each), so the results are those of a local run, to the last digit, as long
as torch and BLAS compute with one thread there as in a Ray task (``OMP_NUM_THREADS=1``; more threads round
float sums differently) and the sampler is off (vita 0.1.0 starts it at a position each process draws in
turn: docs/cluster.md).
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.benchmark.methods import InitPreset, LibraryLookup, MeanPreset, Method, NearestNeighbour, RandomPreset, RLPolicy, Supervised, Syntheon
from agents.benchmark.metrics import AUDIO_METRICS, HIGHER_IS_BETTER, PARAM_METRICS, AudioMetrics, ParameterMetrics, mean_ci95
from agents.benchmark.testsets import SET_KINDS, TEST_SEED, TestItem, audio_set, preset_set, synthetic_set
from agents.dataset.generate import DatasetConfig
from agents.match import DEFAULT_DRAWS, DEFAULT_MODEL
from vital_gym.params import ParameterSpace
from vital_gym.preset import PresetCodec
from vital_gym.render import RenderConfig, Renderer, RenderError
from vital_gym.resources import find_config

METHODS = (
    "init",
    "random",
    "mean",
    "nearest",
    "nearest+refine",
    "library",
    "shipped-library",
    "supervised",
    "supervised-top",
    "supervised+refine",
    "supervised+library",
    "supervised+library+refine",
    "supervised+neighbours",
    "supervised+neighbours+library",
    "supervised+neighbours+library+refine",
    "ppo",
    "syntheon",
)


@dataclass
class BenchmarkConfig:
    """What to run; paths that are None leave out the sets and methods that need them."""

    dataset_config: str = "core"  # a shipped name or a YAML path: space, render settings, synthetic sampling
    sets: tuple[str, ...] = SET_KINDS
    methods: tuple[str, ...] = METHODS
    n_synthetic: int = 200
    # The synthetic set's seed. Another one draws a fresh set like it: a re-test on targets that no setting was
    # chosen on (the dataset baselines then refuse a dataset made with that seed instead).
    synthetic_seed: int = TEST_SEED
    limit: int | None = None  # at most this many items of the human and voice sets
    presets: str | None = "../shared/presets"  # the human set
    audio: str | None = None  # the voice set
    library: str | None = None  # library lookup's folder (default: presets)
    dataset: str | None = None  # the training set of the mean preset and nearest neighbour
    checkpoint: str | None = None  # the supervised model (default: the shipped one, when there is one)
    refine_budget: int = 100  # renders of supervised+refine and nearest+refine per item
    draws: int = DEFAULT_DRAWS  # presets drawn per hypothesis, rendered beside it, by supervised and supervised+refine
    critic: str | bool = True  # supervised(+refine)'s candidate critic: True the model folder's own if any, a folder, or False
    policy: str | None = None  # a policy folder saved by vital-gym ppo (method "ppo")
    syntheon_python: str | None = ".syntheon-venv/bin/python"
    clap_checkpoint: str | None = None
    seed: int = 0
    out: str = "docs"
    examples: int = 3
    keep_previous: bool = False  # merge with OUT's earlier results: methods not run now keep their rows
    command: str = ""  # the command line, written into the report
    render_workers: int | None = None  # threads screening candidates (matcher, nearest+refine); None: one per core, at most 4
    ray: bool | str = False  # items as Ray tasks: True starts Ray here (or joins RAY_ADDRESS's), a string is the cluster's address

    @classmethod
    def quick(cls, **overrides: Any) -> BenchmarkConfig:
        """A handful of items per set and no Syntheon: runs in CI."""
        quick_methods = ("init", "random", "mean", "nearest", "nearest+refine", "library", "supervised", "supervised+refine")
        return cls(**{"n_synthetic": 4, "limit": 3, "methods": quick_methods, "refine_budget": 8, "syntheon_python": None, **overrides})


@dataclass
class Result:
    set: str
    item: str
    method: str
    ok: bool
    error: str = ""
    seconds: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""  # the item's kind within its set (a synthetic item's dataset source); "" when none


def build_methods(config: BenchmarkConfig, codec: PresetCodec, render: RenderConfig) -> tuple[list[Method], dict[str, str]]:
    """The methods that can be set up, and why each of the others was left out."""
    unknown = set(config.methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {list(METHODS)}")
    methods: list[Method] = []
    skipped: dict[str, str] = {}
    for name in config.methods:
        try:
            if name == "init":
                methods.append(InitPreset())
            elif name == "random":
                methods.append(RandomPreset(codec, config.seed))
            elif name == "mean":
                if not config.dataset:
                    raise FileNotFoundError("no --dataset given")
                methods.append(MeanPreset(config.dataset, codec, test_seed=config.synthetic_seed))
            elif name in ("nearest", "nearest+refine"):
                if not config.dataset:
                    raise FileNotFoundError("no --dataset given")
                budget = config.refine_budget if name == "nearest+refine" else 0
                methods.append(
                    NearestNeighbour(
                        config.dataset,
                        codec,
                        render,
                        refine_budget=budget,
                        seed=config.seed,
                        test_seed=config.synthetic_seed,
                        render_workers=config.render_workers,
                    )
                )
            elif name == "library":
                folder = config.library or config.presets
                if not folder:
                    raise FileNotFoundError("no --library (or --presets) folder given")
                methods.append(LibraryLookup(folder, render))
            elif name == "shipped-library":
                from agents.library import shipped_library_dir

                methods.append(LibraryLookup(shipped_library_dir(), render, name=name))
            elif name.startswith("supervised"):
                budget = config.refine_budget if name.endswith("+refine") else 0
                select = name != "supervised-top"
                library, neighbours = "+library" in name, "+neighbours" in name
                methods.append(
                    Supervised(
                        config.checkpoint or DEFAULT_MODEL,
                        codec,
                        budget,
                        config.seed,
                        select,
                        config.draws,
                        config.critic,
                        library,
                        config.render_workers,
                        neighbours,
                        config.synthetic_seed,
                    )
                )
            elif name == "ppo":
                if not config.policy:
                    raise FileNotFoundError("no --policy given")
                methods.append(RLPolicy(config.policy, codec))
            elif name == "syntheon":
                if not config.syntheon_python:
                    raise FileNotFoundError("no Syntheon python given")
                methods.append(Syntheon(config.syntheon_python, render.sample_rate))
        except (FileNotFoundError, ValueError) as e:
            skipped[name] = str(e)
    return methods, skipped


def build_sets(
    config: BenchmarkConfig, dataset_config: DatasetConfig, space: ParameterSpace, render: RenderConfig
) -> tuple[dict[str, list[TestItem]], dict[str, str]]:
    unknown = set(config.sets) - set(SET_KINDS)
    if unknown:
        raise ValueError(f"unknown test sets {sorted(unknown)}; known: {list(SET_KINDS)}")
    sets: dict[str, list[TestItem]] = {}
    skipped: dict[str, str] = {}
    for kind in config.sets:
        if kind == "synthetic":
            if config.synthetic_seed == dataset_config.seed:
                raise ValueError(
                    f"synthetic seed {config.synthetic_seed} is the training data's ({config.dataset_config}): its items would be training samples"
                )
            sets[kind] = synthetic_set(space, dataset_config, config.n_synthetic, seed=config.synthetic_seed)
        elif kind == "human" and config.presets and Path(config.presets).is_dir():
            sets[kind] = preset_set(config.presets, space, render, config.limit)
        elif kind == "voice" and config.audio and Path(config.audio).is_dir():
            sets[kind] = audio_set(config.audio, render, config.limit)
        else:
            folder = config.presets if kind == "human" else config.audio
            skipped[kind] = f"no folder ({folder!r} is not one)"
    return sets, skipped


def evaluate(
    items: Sequence[TestItem],
    methods: Sequence[Method],
    renderer: Renderer,
    audio_metrics: AudioMetrics,
    param_metrics: ParameterMetrics,
    progress: bool = False,
) -> tuple[list[Result], dict[tuple[str, str], np.ndarray]]:
    """Score every method on every item; also returns each method's render per item (for the plots).
    ``progress`` shows a progress bar per method, with the time left."""
    from tqdm import tqdm

    results: list[Result] = []
    renders: dict[tuple[str, str], np.ndarray] = {}
    for method in methods:
        start = time.perf_counter()
        method.prepare(items)
        prepare_seconds = (time.perf_counter() - start) / max(1, len(items))
        for item in tqdm(items, desc=method.name, unit="item", disable=not progress, leave=False):
            result, audio = score(method, item, renderer, audio_metrics, param_metrics, prepare_seconds)
            results.append(result)
            if audio is not None:
                renders[(item.name, method.name)] = audio
    return results, renders


def score(
    method: Method, item: TestItem, renderer: Renderer, audio_metrics: AudioMetrics, param_metrics: ParameterMetrics, prepare_seconds: float = 0.0
) -> tuple[Result, np.ndarray | None]:
    """One method on one item: its result, and its render (None when it failed)."""
    start = time.perf_counter()
    try:
        pred = method.predict(item)
    except Exception as e:  # noqa: BLE001 - one item never stops the benchmark
        return Result(item.set, item.name, method.name, False, f"{type(e).__name__}: {e}", source=item.source), None
    seconds = pred.seconds if pred.seconds is not None else time.perf_counter() - start + prepare_seconds
    if pred.preset is None:
        return Result(item.set, item.name, method.name, False, pred.error or "no preset", seconds, source=item.source), None
    try:
        rendered = renderer.render(pred.preset, item.midi_note, item.velocity)
    except RenderError as e:
        return Result(item.set, item.name, method.name, False, str(e), seconds, source=item.source), None
    scores = audio_metrics(rendered.audio, item.audio)
    if item.params is not None:
        scores.update(param_metrics(param_metrics.codec.from_preset(pred.preset), item.params))
    return Result(item.set, item.name, method.name, True, "", seconds, scores, item.source), rendered.audio


# A Ray worker process builds each method once, for the config it was given, and keeps it between tasks.
_on_worker: dict[str, Any] = {}


def _score_on_ray(config: BenchmarkConfig, method_name: str, item: TestItem, keep_render: bool) -> tuple[Result, np.ndarray | None]:
    """A Ray task: ``method_name`` of ``config`` on ``item``; the render is returned only if ``keep_render``."""
    if _on_worker.get("config") != config:
        _on_worker.clear()
        dataset_config, space, codec, render, clap = setting(config)
        _on_worker.update(config=config, codec=codec, render=render, methods={})
        _on_worker["tools"] = Renderer(render), AudioMetrics(render.sample_rate, clap), ParameterMetrics(space)
    methods = _on_worker["methods"]
    if method_name not in methods:
        built, skipped = build_methods(replace(config, methods=(method_name,)), _on_worker["codec"], _on_worker["render"])
        if not built:
            raise RuntimeError(f"{method_name} could not be set up on this Ray worker: {skipped.get(method_name)}")
        methods[method_name] = built[0]
    result, audio = score(methods[method_name], item, *_on_worker["tools"])
    return result, audio if keep_render else None


def evaluate_on_ray(
    ray: Any, config: BenchmarkConfig, items: Sequence[TestItem], methods: Sequence[Method], local: tuple[Renderer, AudioMetrics, ParameterMetrics], keep: int
) -> tuple[list[Result], dict[tuple[str, str], np.ndarray]]:
    """:func:`evaluate` with each item of each method a Ray task (Syntheon, one batch, runs here); the
    renders of the first ``keep`` items come back for the plots."""
    task = ray.remote(num_cpus=config.render_workers, max_retries=2)(_score_on_ray)
    config_ref = ray.put(config)
    results: list[Result] = []
    renders: dict[tuple[str, str], np.ndarray] = {}
    for method in methods:
        if isinstance(method, Syntheon):
            here, here_renders = evaluate(items, [method], *local)
            results += here
            renders.update(here_renders)
            continue
        refs = [task.remote(config_ref, method.name, item, k < keep) for k, item in enumerate(items)]
        for item, (result, audio) in zip(items, ray.get(refs)):
            results.append(result)
            if audio is not None:
                renders[(item.name, method.name)] = audio
    return results, renders


def setting(config: BenchmarkConfig) -> tuple[DatasetConfig, ParameterSpace, PresetCodec, RenderConfig, Any]:
    """What every method and metric of ``config`` share: the dataset config, space, codec, render settings
    and the CLAP embedder (None without a checkpoint)."""
    dataset_config = DatasetConfig.from_yaml(find_config("dataset", config.dataset_config))
    space = ParameterSpace.from_spec(dataset_config.space)
    render = RenderConfig.from_dict(dataset_config.render)
    clap = None
    if config.clap_checkpoint:
        from vital_gym.rewards import ClapEmbedder, RewardConfig

        clap = ClapEmbedder.from_config(RewardConfig(clap_weight=1.0, clap_checkpoint=config.clap_checkpoint))
    return dataset_config, space, PresetCodec(space), render, clap


def summarise(results: Sequence[Result]) -> dict[tuple[str, str], dict[str, Any]]:
    """(set, method) -> n, failures, and (mean, ci95) per metric and for seconds per item."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key in dict.fromkeys((r.set, r.method) for r in results):
        rows = [r for r in results if (r.set, r.method) == key]
        ok = [r for r in rows if r.ok]
        summary: dict[str, Any] = {"n": len(rows), "failed": len(rows) - len(ok)}
        names = dict.fromkeys(m for r in ok for m in r.metrics)
        for m in names:
            summary[m] = mean_ci95(np.array([r.metrics.get(m, np.nan) for r in ok]))
        summary["seconds"] = mean_ci95(np.array([r.seconds for r in rows]))
        out[key] = summary
    return out


def summarise_by_source(results: Sequence[Result], metric: str = "mrstft") -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """set -> method -> "source (items)" -> (mean, ci95) of ``metric``, for the sets whose items come from two or more
    sources (the synthetic set: one row per dataset source, because a method can win on one kind of sound
    and lose on another)."""
    out: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for set_name in dict.fromkeys(r.set for r in results):
        rows = [r for r in results if r.set == set_name and r.ok and metric in r.metrics and r.source]
        items = {src: len({r.item for r in rows if r.source == src}) for src in sorted({r.source for r in rows})}
        if len(items) < 2:
            continue
        out[set_name] = {
            method: {
                f"{src} ({n})": mean_ci95(np.array([r.metrics[metric] for r in rows if r.method == method and r.source == src])) for src, n in items.items()
            }
            for method in dict.fromkeys(r.method for r in rows)
        }
    return out


def write_csv(results: Sequence[Result], path: Path) -> Path:
    names = list(dict.fromkeys(m for r in results for m in r.metrics))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["set", "item", "source", "method", "ok", "error", "seconds", *names])
        for r in results:
            w.writerow(
                [
                    r.set,
                    r.item,
                    r.source,
                    r.method,
                    int(r.ok),
                    r.error,
                    f"{r.seconds:.4f}",
                    *(f"{r.metrics[m]:.6g}" if m in r.metrics else "" for m in names),
                ]
            )
    return path


def read_csv(path: Path) -> list[Result]:
    """The rows :func:`write_csv` wrote (empty metric cells are metrics the item did not get; files from
    before the ``source`` column read as items without a source)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fixed = {"set", "item", "source", "method", "ok", "error", "seconds"}
    return [
        Result(
            r["set"],
            r["item"],
            r["method"],
            r["ok"] == "1",
            r["error"],
            float(r["seconds"]),
            {k: float(v) for k, v in r.items() if k not in fixed and v not in ("", None)},
            r.get("source") or "",
        )
        for r in rows
    ]


def check_previous(previous: Sequence[Result], sets: dict[str, list[TestItem]], rerun: set[str]) -> None:
    """Refuse to merge earlier rows that are for other test items (before any method runs).

    The sets are regenerated from fixed seeds, so earlier rows match unless a set's folder or size, or the
    test seed, changed; then the tables would compare methods on different targets.
    """
    names = {name: {item.name for item in items} for name, items in sets.items()}
    for r in previous:
        if r.method not in rerun and r.set in names and r.item not in names[r.set]:
            raise ValueError(
                f"earlier result for {r.set}/{r.item} ({r.method}) is not an item of this run's {r.set} set: "
                "the test sets changed; re-run every method without --keep-previous"
            )


def merge_previous(
    results: list[Result], sets: dict[str, list[TestItem]], rerun: set[str], previous: list[Result], previous_runs: dict[str, Any]
) -> tuple[list[Result], dict[str, Any]]:
    """This run's rows plus the earlier rows of the methods not in ``rerun``, ordered by set, method, item."""
    source = {(item.set, item.name): item.source for items in sets.values() for item in items}
    kept = [replace(r, source=r.source or source.get((r.set, r.item), "")) for r in previous if r.method not in rerun]
    set_order = {name: k for k, name in enumerate(dict.fromkeys([*sets, *(r.set for r in kept)]))}
    method_order = {name: k for k, name in enumerate(METHODS)}
    item_order = {(r.set, r.item): k for k, r in enumerate([*results, *kept])}
    merged = sorted([*results, *kept], key=lambda r: (set_order[r.set], method_order.get(r.method, len(METHODS)), item_order[(r.set, r.item)]))
    notes = {m: d for m, d in previous_runs.get("notes", {}).items() if m not in rerun}
    left_out = {m: why for m, why in previous_runs.get("left_out", {}).items() if m not in rerun}
    # Runs recorded before example images were listed wrote them under one name per set.
    examples = previous_runs.get("examples") or {name: [f"img/benchmark_{name}_examples.png"] for name in set_order}
    record = {"commands": previous_runs.get("commands", []), "notes": notes, "left_out": left_out, "examples": examples}
    if "synthetic_seed" in previous_runs:
        record["synthetic_seed"] = previous_runs["synthetic_seed"]
    return merged, record


def _cell(value: tuple[float, float]) -> str:
    mean, ci = value
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.3g} ± {ci:.2g}" if np.isfinite(ci) else f"{mean:.3g}"


def machine_description() -> str:
    """This machine and today's date, as a report names where its latest run was made."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {datetime.date.today().isoformat()}"


def markdown_report(
    summary: dict[tuple[str, str], dict[str, Any]],
    config: BenchmarkConfig,
    skipped: dict[str, str],
    images: dict[str, list[tuple[str, str]]],
    notes: dict[str, str] | None = None,
    commands: Sequence[str] | None = None,
    by_source: dict[str, dict[str, dict[str, tuple[float, float]]]] | None = None,
    synthetic_seed: int = TEST_SEED,
    machine: str | None = None,
) -> str:
    notes = notes or {}
    by_source = by_source or {}
    commands = commands or [config.command or "vital-gym benchmark"]
    lines = [
        "# Benchmark",
        "",
        "Generated by `vital-gym benchmark` (`agents/benchmark/`); do not edit by hand. Regenerate with"
        + (" (the later commands re-ran some methods with `--keep-previous`):" if len(commands) > 1 else ":"),
        "",
        "```",
        *commands,
        "```",
        "",
        f"Machine: {machine or machine_description()}. Every cell is the mean ± the half-width of its 95% confidence "
        "interval (Student's t) over the items a method did not fail on. Lower is better except for "
        f"{', '.join(sorted(HIGHER_IS_BETTER))}. Metrics: see `agents/benchmark/metrics.py`; `s/item` is the "
        "method's own time per item (Syntheon's excludes its start-up).",
        "",
    ]
    for name, what in notes.items():
        lines.append(f"- **{name}**: {what}")
    for name, why in skipped.items():
        lines.append(f"- left out: **{name}**: {why}")
    if skipped or notes:
        lines.append("")
    for set_name in dict.fromkeys(s for s, _ in summary):
        rows = {m: v for (s, m), v in summary.items() if s == set_name}
        metrics = [m for m in (*AUDIO_METRICS, "clap", *PARAM_METRICS) if any(m in v for v in rows.values())]
        fresh = f", drawn from seed {synthetic_seed}, not the test seed" if set_name == "synthetic" and synthetic_seed != TEST_SEED else ""
        lines += [f"## {set_name} ({next(iter(rows.values()))['n']} items{fresh})", ""]
        lines.append("| method | failed | " + " | ".join(metrics) + " | s/item |")
        lines.append("| --- | --- | " + " | ".join("---" for _ in metrics) + " | --- |")
        for method, v in rows.items():
            cells = [_cell(v[m]) if m in v else "-" for m in metrics]
            lines.append(f"| {method} | {v['failed']} | " + " | ".join(cells) + f" | {_cell(v['seconds'])} |")
        lines.append("")
        if set_name in by_source:
            per_method = by_source[set_name]
            sources = list(next(iter(per_method.values())))
            lines += [f"mrstft by the items' source (the dataset source each {set_name} item was drawn from):", ""]
            lines.append("| method | " + " | ".join(sources) + " |")
            lines.append("| --- | " + " | ".join("---" for _ in sources) + " |")
            for method, cells in per_method.items():
                lines.append(f"| {method} | " + " | ".join(_cell(cells[src]) for src in sources) + " |")
            lines.append("")
        for img, caption in images.get(set_name, []):
            lines += [f"![{set_name}]({img})", ""] + ([caption, ""] if caption else [])
    return "\n".join(lines)


def plot_bars(summary: dict[tuple[str, str], dict[str, Any]], set_name: str, path: Path, metric: str = "mrstft") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(m, v[metric]) for (s, m), v in summary.items() if s == set_name and metric in v]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    means = [mean for _, (mean, _) in rows]
    cis = [ci if np.isfinite(ci) else 0.0 for _, (_, ci) in rows]
    ax.bar([m for m, _ in rows], means, yerr=cis, capsize=4, color="#4c72b0")
    ax.set_ylabel(f"{metric} (lower is better)")
    ax.set_title(f"{set_name}: mean and 95% CI")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_examples(items: Sequence[TestItem], methods: Sequence[str], renders: dict[tuple[str, str], np.ndarray], sample_rate: int, path: Path) -> Path:
    """Log-mel spectrograms: one row per example, the target then each method's render."""
    from agents.plots import plot_grid
    from vital_gym.features import LogMelSpectrogram, MelConfig

    rows = [[("target", item.audio), *((name, renders.get((item.name, name))) for name in methods)] for item in items]
    return plot_grid(rows, LogMelSpectrogram(MelConfig(), sample_rate), path, row_labels=[item.name for item in items])


def run_benchmark(config: BenchmarkConfig, log=print, progress: bool = False) -> tuple[list[Result], Path]:
    """Run everything; returns the per-item results and the markdown report's path. ``progress`` shows a
    progress bar of each method's items."""
    ray = None
    if config.ray is not False:
        from agents.cluster import connect
        from agents.match import default_render_workers

        ray = connect(config.ray if isinstance(config.ray, str) else None)
        config = replace(config, render_workers=config.render_workers or default_render_workers())  # the same on every node
    dataset_config, space, codec, render, clap = setting(config)
    methods, skipped = build_methods(config, codec, render)
    log(f"methods: {[m.name for m in methods]}" + (f"; left out: {skipped}" if skipped else ""))
    sets, skipped_sets = build_sets(config, dataset_config, space, render)
    skipped.update(skipped_sets)
    out = Path(config.out)
    csv_path, json_path = record_paths(out)
    ran = {m.name for m in methods}
    previous: list[Result] | None = None
    if config.keep_previous and csv_path.is_file():
        previous = read_csv(csv_path)
        check_previous(previous, sets, ran)
        previous_runs = json.loads(json_path.read_text()) if json_path.is_file() else {}
        earlier_seed = synthetic_seed(previous_runs)
        if "synthetic" in sets and earlier_seed != config.synthetic_seed:
            raise ValueError(
                f"{out}'s synthetic items were drawn from seed {earlier_seed}, this run's from {config.synthetic_seed}: "
                "their rows would not be of the same targets; use another --out"
            )
    renderer = Renderer(render)
    audio_metrics, param_metrics = AudioMetrics(render.sample_rate, clap), ParameterMetrics(space)
    results: list[Result] = []
    examples: dict[str, tuple[list[TestItem], dict]] = {}
    for name, items in sets.items():
        log(f"{name}: {len(items)} items")
        if ray is None:
            set_results, renders = evaluate(items, methods, renderer, audio_metrics, param_metrics, progress)
        else:
            set_results, renders = evaluate_on_ray(ray, config, items, methods, (renderer, audio_metrics, param_metrics), config.examples)
        results += set_results
        examples[name] = (items[: config.examples], renders)
    runs: dict[str, Any] = {"commands": [], "notes": {}, "left_out": {}, "examples": {}}
    if previous is not None:
        results, runs = merge_previous(results, sets, ran, previous, previous_runs)
        log(f"kept earlier results of {sorted({r.method for r in results} - ran)} from {csv_path}")
    runs["commands"].append(config.command or "vital-gym benchmark")
    if "synthetic" in sets:
        runs["synthetic_seed"] = config.synthetic_seed
    runs["notes"].update({m.name: m.description for m in methods if getattr(m, "description", "")})
    runs["left_out"].update(skipped)
    runs["machine"] = machine_description()  # the latest run's: a report rebuilt later still names it
    write_csv(results, csv_path)
    # A merged run plots its own methods' examples beside the earlier runs' (their renders are not kept).
    suffix = "_" + "-".join(m.name.replace("+", "-") for m in methods) if previous is not None else ""
    for name, (items, renders) in examples.items():
        ex = plot_examples(items, [m.name for m in methods], renders, render.sample_rate, out / "img" / f"benchmark_{name}_examples{suffix}.png")
        entry = {"image": str(ex.relative_to(out)), "methods": [m.name for m in methods], "command": runs["commands"][-1]}
        earlier = [e for e in runs["examples"].get(name, []) if _example_image(e) != entry["image"]]
        runs["examples"][name] = kept = [e for e in earlier if _current_methods(e, [*earlier, entry]) != []] + [entry]
        for e in earlier:  # images whose every method was re-run since show nothing current
            if e not in kept:
                (out / _example_image(e)).unlink(missing_ok=True)
    json_path.write_text(json.dumps(runs, indent=2))
    return results, write_report(read_csv(csv_path), runs, config, out)  # the report says what the CSV holds


def _example_image(entry: str | dict[str, Any]) -> str:
    """An example entry of ``runs.json``: its image (runs recorded before the methods were, a bare path)."""
    return entry if isinstance(entry, str) else entry["image"]


def _current_methods(entry: str | dict[str, Any], entries: Sequence[str | dict[str, Any]]) -> list[str] | None:
    """The methods of an example image whose results are still that run's: those no later image of
    ``entries`` (oldest first) shows. ``None`` where the image's methods were not recorded."""
    if isinstance(entry, str):
        return None
    later = entries[[_example_image(e) for e in entries].index(entry["image"]) + 1 :]
    rerun = {m for e in later if not isinstance(e, str) for m in e["methods"]}
    return [m for m in entry["methods"] if m not in rerun]


def example_images(entries: Sequence[str | dict[str, Any]]) -> list[tuple[str, str]]:
    """Each example image with its caption: the command that made it, and which of its methods were re-run
    since (their current examples are in a later image)."""
    out = []
    for entry in entries:
        current = _current_methods(entry, entries)
        if current is None:
            out.append((_example_image(entry), ""))
            continue
        stale = [m for m in entry["methods"] if m not in current]
        caption = f"Examples from `{entry['command']}`"
        caption += f"; {', '.join(stale)} re-run since (see the later images)." if stale else "."
        out.append((entry["image"], caption))
    return out


def synthetic_seed(runs: dict[str, Any]) -> int:
    """The seed a ``runs.json`` record's synthetic items were drawn from (records from before it was kept: the test seed)."""
    return int(runs.get("synthetic_seed", TEST_SEED))


def record_paths(out: Path) -> tuple[Path, Path]:
    """Where a run's results live: the per-item CSV and the runs' record (commands, notes, images)."""
    return out / "benchmarks" / "items.csv", out / "benchmarks" / "runs.json"


def write_report(results: Sequence[Result], runs: dict[str, Any], config: BenchmarkConfig, out: Path) -> Path:
    """``OUT/benchmarks.md`` and the per-set bar charts, from the results and the runs' record."""
    summary = summarise(results)
    images: dict[str, list[tuple[str, str]]] = {}
    for name in dict.fromkeys(r.set for r in results):
        bars = plot_bars(summary, name, out / "img" / f"benchmark_{name}.png")
        examples = [(img, caption) for img, caption in example_images(runs.get("examples", {}).get(name, [])) if (out / img).is_file()]
        images[name] = [(str(bars.relative_to(out)), ""), *examples]
    report = out / "benchmarks.md"
    report.write_text(
        markdown_report(
            summary,
            config,
            runs.get("left_out", {}),
            images,
            runs.get("notes"),
            runs.get("commands"),
            summarise_by_source(results),
            synthetic_seed(runs),
            runs.get("machine"),
        )
    )
    return report


def rewrite_report(config: BenchmarkConfig) -> Path:
    """Rebuild the report and bar charts from ``OUT/benchmarks/`` (items.csv, runs.json), running nothing."""
    out = Path(config.out)
    csv_path, json_path = record_paths(out)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path} does not exist: run the benchmark first")
    runs = json.loads(json_path.read_text()) if json_path.is_file() else {}
    return write_report(read_csv(csv_path), runs, config, out)
