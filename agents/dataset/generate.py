"""Generate (audio, parameters) pairs through Vita: parallel, sharded, deterministic and resumable.

Determinism: sample ``k`` is drawn from ``numpy.random.default_rng([seed, k, attempt])``, so the same
seed and config give the same samples whatever the number of workers or how often a run was restarted.
A draw whose render is silent, non-finite or clipped is rejected (counted per reason) and re-drawn with
the next ``attempt``.

Resuming: shard ``s`` always holds samples ``s * shard_size ...``; shards are written atomically, and a
restarted run keeps every complete shard (checked against the manifest's SHA-256, or re-verified when the
run died between writing a shard and recording it) and generates the rest. The result is exactly
``num_samples`` samples, each once.

Where: worker processes on this machine (``workers``), or Ray tasks on a cluster (``cluster``; the extra
``vital-gym[ray]``): one task per shard, each Ray worker process keeping one Vita synth from shard to
shard; a task whose worker dies is run again (``RAY_SHARD_RETRIES``). Tasks return the shard's bytes and
this process writes them, so the output folder needs to be on this machine only. The same seed and config
give the same shard files either way. Running on Ray, the manifest records the shards once, at the end (a
run stopped before then is resumed from the shard files themselves).

One exception in vita 0.1.0: the sampler (``sample_on``) starts at a position drawn from a generator that
each process seeds in turn, so a sample with the sampler on is the same sound with a different noise each
time it is rendered in a different process history. A space without the sampler is exactly reproducible.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import queue
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from agents.dataset.shards import MANIFEST, Manifest, encode_shard, quantise, read_shard, sha256, shard_name, write_shard, write_shard_bytes
from vital_gym.audio import resample
from vital_gym.features import MelConfig, spectrogram
from vital_gym.params import Kind, ParameterSpace
from vital_gym.preset import Preset, PresetCodec, PresetError
from vital_gym.render import RenderConfig, Renderer, RenderResult

REJECT_REASONS = ("silent", "non_finite", "clipped")
RAY_SHARD_RETRIES = 3  # times a shard's task is run again when its worker process dies


@dataclass
class DatasetConfig:
    """What to generate; ``configs/dataset/core.yaml`` documents every field."""

    space: str | dict[str, Any] = "core"
    seed: int = 0
    shard_size: int = 1000
    render: dict[str, Any] = field(default_factory=dict)
    observation: dict[str, Any] = field(default_factory=dict)
    audio_sample_rate: int | None = 22050
    midi_notes: tuple[int, ...] = (60,)
    velocity: tuple[float, float] = (0.7, 0.7)
    max_attempts: int = 200
    sources: dict[str, dict[str, Any]] = field(default_factory=lambda: {"uniform": {"weight": 1.0}})

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> DatasetConfig:
        with Path(path).open() as f:
            d = yaml.safe_load(f) or {}
        d.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown dataset settings {sorted(unknown)}")
        cfg = cls(**d)
        cfg.midi_notes = tuple(int(n) for n in cfg.midi_notes)
        cfg.velocity = tuple(float(v) for v in cfg.velocity)
        if not cfg.midi_notes or any(not 0 <= n <= 127 for n in cfg.midi_notes):
            raise ValueError(f"midi_notes={cfg.midi_notes}: give MIDI notes in 0..127")
        if len(cfg.velocity) != 2 or not 0 < cfg.velocity[0] <= cfg.velocity[1] <= 1:
            raise ValueError(f"velocity={cfg.velocity}: give [low, high] with 0 < low <= high <= 1")
        if cfg.shard_size < 1 or cfg.max_attempts < 1:
            raise ValueError("shard_size and max_attempts must be >= 1")
        if not cfg.sources or any(float(s.get("weight", 0)) <= 0 for s in cfg.sources.values()):
            raise ValueError("sources: give at least one source, each with a positive weight")
        MelConfig.from_dict(cfg.observation)  # refused here, before anything is written, if it is wrong
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["midi_notes"], d["velocity"] = list(self.midi_notes), list(self.velocity)
        return d


def with_priors(space: ParameterSpace, priors: dict[str, dict[str, float]]) -> ParameterSpace:
    """The space with some parameters' priors replaced (names, ranges and fingerprint unchanged)."""
    unknown = set(priors) - set(space.names)
    if unknown:
        raise ValueError(f"priors for parameters not in space '{space.name}': {sorted(unknown)}")
    params = []
    for p in space.parameters:
        o = priors.get(p.name, {})
        params.append(
            dataclasses.replace(
                p,
                prior_low=float(o.get("low", p.prior_low)),
                prior_high=float(o.get("high", p.prior_high)),
                p_on=float(o.get("p_on", p.p_on)),
            )
        )
    return dataclasses.replace(space, parameters=tuple(params))


class HumanBase(NamedTuple):
    """A human preset a perturbation source starts from: its path in the folder, its file, codec and vector."""

    name: str
    path: Path
    codec: PresetCodec
    vector: np.ndarray


class AudibleSample(NamedTuple):
    """A drawn sample that passed the checks: its parameters, source, note, velocity, base preset (-1: the
    space's own), the draws it took and its render."""

    x: np.ndarray
    source: int
    note: int
    velocity: float
    base: int
    attempts: int
    result: RenderResult


class SampleMaker:
    """Draws, renders and checks one sample at a time; one per worker process (it holds a Vita synth)."""

    def __init__(self, config: DatasetConfig):
        self.config = config
        self.space = ParameterSpace.from_spec(config.space)
        self.codec = PresetCodec(self.space)
        self.render_config = RenderConfig.from_dict(config.render)
        self.renderer = Renderer(self.render_config)
        self.mel = spectrogram(MelConfig.from_dict(config.observation), self.render_config.sample_rate)
        self.source_names = list(config.sources)
        weights = np.array([float(config.sources[n]["weight"]) for n in self.source_names])
        self.source_p = weights / weights.sum()
        self.bases: list[HumanBase] = []  # every perturbation source's presets; the ``base`` field indexes it
        self.sources = [self._build_source(n, config.sources[n]) for n in self.source_names]
        self.discrete = [i for i, p in enumerate(self.space.parameters) if p.kind is not Kind.CONTINUOUS]

    def _build_source(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A source draws from the space (uniform, or with prior overrides), or perturbs human presets."""
        if "presets" not in spec:
            return {"space": with_priors(self.space, spec.get("priors") or {}), "prior": name != "uniform"}
        if spec["presets"] == "shipped":  # the presets installed with the package (agents/library, NOTICE.md)
            from agents.library import shipped_library_dir

            folder = shipped_library_dir()
        else:
            folder = Path(spec["presets"])
        files = sorted(folder.rglob("*.vital")) if folder.is_dir() else []
        indices = []
        for path in files:
            try:
                preset = Preset.load(path)
            except PresetError as e:
                warnings.warn(f"source '{name}': skipping {path}: {e}", stacklevel=2)
                continue
            codec = PresetCodec(self.space, base=preset)
            indices.append(len(self.bases))
            self.bases.append(HumanBase(str(path.relative_to(folder)), path, codec, codec.from_preset(preset)))
        if not indices:
            raise ValueError(f"source '{name}': no usable .vital preset in {folder}")
        return {"bases": indices, "jitter": float(spec.get("jitter", 0.05)), "p_change": float(spec.get("p_change", 0.1))}

    @property
    def base_presets(self) -> list[str]:
        """The human presets, in the order the ``base`` field indexes them."""
        return [b.name for b in self.bases]

    def draw(self, index: int, attempt: int) -> tuple[np.ndarray, int, int, float, int]:
        """Parameters, source, note, velocity and base preset (-1: the space's own) of sample ``index``."""
        rng = np.random.default_rng([self.config.seed, index, attempt])
        source = int(rng.choice(len(self.source_names), p=self.source_p))
        spec = self.sources[source]
        base = -1
        if "bases" in spec:
            base = spec["bases"][int(rng.integers(len(spec["bases"])))]
            x = self._perturb(self.bases[base].vector, spec["jitter"], spec["p_change"], rng)
        else:
            x = spec["space"].sample(rng, prior=spec["prior"])
        x = self.codec.canonical(x)
        note = int(self.config.midi_notes[rng.integers(len(self.config.midi_notes))])
        velocity = float(rng.uniform(*self.config.velocity))
        return x, source, note, velocity, base

    def _perturb(self, x0: np.ndarray, jitter: float, p_change: float, rng: np.random.Generator) -> np.ndarray:
        """Gaussian jitter on continuous and integer parameters; discrete ones redrawn with ``p_change``."""
        x = x0 + rng.normal(0.0, jitter, size=x0.shape).astype(np.float32)
        redraw = self.space.sample(rng, prior=False)
        for i, p in enumerate(self.space.parameters):
            if p.kind in (Kind.CATEGORICAL, Kind.TOGGLE):
                x[i] = redraw[i] if rng.random() < p_change else x0[i]
        return np.clip(x, 0.0, 1.0)

    def codec_for(self, base: int) -> PresetCodec:
        return self.codec if base < 0 else self.bases[base].codec

    def discrete_indices(self, x: np.ndarray) -> np.ndarray:
        """The value index (0 .. n-1) of every discrete parameter of a parameter vector."""
        params = self.space.parameters
        return np.array([round(params[i].denormalize(x[i]) - params[i].low) for i in self.discrete], dtype=np.int16)

    def render_audible(self, index: int, rejected: dict[str, int], name: str = "vital-gym") -> AudibleSample:
        """Sample ``index``'s first draw whose render (a preset called ``name``) is audible, finite and
        unclipped; each rejected draw counted in ``rejected`` by reason."""
        for attempt in range(self.config.max_attempts):
            x, source, note, velocity, base = self.draw(index, attempt)
            result = self.renderer.render(self.codec_for(base).to_preset(x, name=name), midi_note=note, velocity=velocity)
            status = result.status
            reason = "non_finite" if not status.finite else "silent" if status.silent else "clipped" if status.clipped else None
            if reason is None:
                return AudibleSample(x, source, note, velocity, base, attempt + 1, result)
            rejected[reason] += 1
        raise RuntimeError(f"sample {index}: {self.config.max_attempts} draws in a row were rejected ({rejected}); widen the priors")

    def quantised_logmel(self, audio: np.ndarray) -> np.ndarray:
        """``audio``'s log-mel as a shard stores it: uint8 ``(n_mels, frames)``, 256 levels over [0, 1]."""
        return quantise(self.mel(audio))

    def make(self, index: int, rejected: dict[str, int]) -> dict[str, Any]:
        s = self.render_audible(index, rejected)
        sample = {
            "index": index,
            "params": s.x,
            "discrete": self.discrete_indices(s.x),
            "midi_note": s.note,
            "velocity": s.velocity,
            "attempts": s.attempts,
            "source": s.source,
            "base": s.base,
            "logmel": self.quantised_logmel(s.result.audio),
        }
        if self.config.audio_sample_rate:
            audio = resample(s.result.audio[0], self.render_config.sample_rate, self.config.audio_sample_rate)
            sample["audio"] = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
        return sample

    def make_shard(self, indices: range, on_sample: Callable[[], None] | None = None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        rejected = dict.fromkeys(REJECT_REASONS, 0)
        samples = []
        for i in indices:
            samples.append(self.make(i, rejected))
            if on_sample is not None:
                on_sample()
        arrays = {
            "index": np.array([s["index"] for s in samples], dtype=np.int64),
            "params": np.stack([s["params"] for s in samples]).astype(np.float32),
            "discrete": np.stack([s["discrete"] for s in samples]).astype(np.int16),
            "midi_note": np.array([s["midi_note"] for s in samples], dtype=np.int16),
            "velocity": np.array([s["velocity"] for s in samples], dtype=np.float32),
            "attempts": np.array([s["attempts"] for s in samples], dtype=np.int16),
            "source": np.array([s["source"] for s in samples], dtype=np.int16),
            "base": np.array([s["base"] for s in samples], dtype=np.int16),
            "logmel": np.stack([s["logmel"] for s in samples]),
            "rejected": np.array([rejected[r] for r in REJECT_REASONS], dtype=np.int64),
        }
        if self.config.audio_sample_rate:
            arrays["audio"] = np.stack([s["audio"] for s in samples])
        return arrays, rejected


# Each worker process holds one SampleMaker (one Vita synth), built once by the pool's initializer.
_worker: dict[str, Any] = {}


def _init_worker(config: DatasetConfig, folder: str, progress: Any) -> None:
    import torch

    torch.set_num_threads(1)  # one process per core: torch's own threads would only compete
    _worker.update(maker=SampleMaker(config), folder=Path(folder), progress=progress, parent=mp.parent_process())


def _after_sample() -> None:
    """Tick the progress bar, and stop if the run was killed.

    Forkserver workers outlive a parent killed with SIGTERM or SIGKILL; without this check they would
    finish their shards beside a resumed run.
    """
    parent = _worker["parent"]
    if parent is not None and not parent.is_alive():
        # The unfinished shard is dropped (nothing of it is on disk yet). os._exit, not SystemExit: the pool
        # would catch that, send it to the dead parent and wait for the next shard.
        os._exit(1)
    if _worker["progress"] is not None:
        _worker["progress"].put(1)


def _run_shard(shard: int, indices: range) -> tuple[int, str, dict[str, int]]:
    maker: SampleMaker = _worker["maker"]
    arrays, rejected = maker.make_shard(indices, on_sample=_after_sample)
    digest = write_shard(_worker["folder"] / shard_name(shard), arrays)
    return shard, digest, rejected


def _ray_shard(config: DatasetConfig, shard: int, indices: range) -> tuple[int, bytes, dict[str, int]]:
    """A Ray task: make one shard and return its file's bytes. A Ray worker process runs many tasks, and
    keeps the synth of the config it last ran (a new one costs about as much as a render)."""
    if _worker.get("config") != config:
        import torch

        torch.set_num_threads(1)
        _worker.update(config=config, maker=SampleMaker(config))
    arrays, rejected = _worker["maker"].make_shard(indices)
    return shard, encode_shard(arrays), rejected


def new_manifest(config: DatasetConfig, num_samples: int) -> Manifest:
    """The manifest of a dataset of ``num_samples`` made by ``config``, with no shard finished yet."""
    import vita

    space = ParameterSpace.from_spec(config.space)
    return Manifest(
        config=config.to_dict(),
        space_fingerprint=space.fingerprint,
        vita_version=vita.__version__,
        param_names=list(space.names),
        discrete_names=[p.name for p in space.parameters if p.kind is not Kind.CONTINUOUS],
        num_samples=num_samples,
        shard_size=config.shard_size,
        base_presets=SampleMaker(config).base_presets,
    )


def _recover(folder: Path, manifest: Manifest) -> list[int]:
    """Shards still to generate; keeps complete shards, drops temporary and corrupt files."""
    for tmp in folder.glob(".shard-*.tmp"):
        tmp.unlink()
    todo = []
    for shard in range(manifest.num_shards):
        name = shard_name(shard)
        path = folder / name
        if name in manifest.shards and path.is_file() and sha256(path) == manifest.shards[name]:
            continue
        manifest.shards.pop(name, None)
        if path.is_file():  # written, but the run died before recording it: keep it if it is whole
            try:
                index = read_shard(path, ("index",))["index"]
                if np.array_equal(index, np.arange(manifest.shard_range(shard).start, manifest.shard_range(shard).stop)):
                    manifest.shards[name] = sha256(path)
                    continue
            except Exception:  # unreadable (a zip cut short): it is regenerated below
                pass
            path.unlink()
        todo.append(shard)
    return todo


def generate(config: DatasetConfig, out: str | Path, num_samples: int, workers: int | None = 1, progress: bool = True, cluster: bool | str = False) -> Manifest:
    """Generate (or finish generating) ``num_samples`` samples into ``out``; returns the manifest.

    ``workers``: processes on this machine, or with ``cluster`` the most shards made at once (None: one
    per CPU of the cluster). ``cluster``: True runs on Ray (started here, or the cluster ``RAY_ADDRESS``
    names), a string is the address of the Ray cluster to join (:func:`agents.cluster.connect`).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples} must be >= 1")
    if workers is not None and workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    if cluster is not False:
        from agents.cluster import connect

        ray = connect(cluster if isinstance(cluster, str) else None)  # before anything is written
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(config, num_samples)
    if (folder / MANIFEST).is_file():
        existing = Manifest.load(folder)
        for key in ("config", "space_fingerprint", "num_samples", "shard_size"):
            if getattr(existing, key) != getattr(manifest, key):
                raise ValueError(f"{folder} holds a dataset made with another {key.replace('_', ' ')}; resume with the same settings, or choose another --out")
        manifest = existing
    todo = _recover(folder, manifest)
    manifest.save(folder)

    bar = None
    if progress:
        from tqdm import tqdm

        done = num_samples - sum(len(manifest.shard_range(s)) for s in todo)
        bar = tqdm(total=num_samples, initial=done, unit="sample", desc=f"generating into {folder}", smoothing=0.1)
    try:
        if cluster is not False:
            _generate_on_ray(ray, config, folder, manifest, todo, workers, bar)
        else:
            _generate_here(config, folder, manifest, todo, workers or default_workers(), bar)
    finally:
        if bar is not None:
            bar.close()
    manifest.rejected = dict(zip(REJECT_REASONS, _total_rejected(folder, manifest)))
    manifest.save(folder)
    return manifest


def _generate_here(config: DatasetConfig, folder: Path, manifest: Manifest, todo: list[int], workers: int, bar: Any) -> None:
    """Make the shards ``todo`` in ``workers`` processes of this machine, recording each in ``manifest`` as it is written."""
    ctx = mp.get_context("forkserver")
    ticks = ctx.Queue() if bar is not None else None  # per-sample progress ticks from the workers
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(config, str(folder), ticks)) as pool:
            pending = {pool.submit(_run_shard, s, manifest.shard_range(s)) for s in todo}
            while pending:
                finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                _drain(ticks, bar)
                for future in finished:
                    shard, digest, _ = future.result()
                    manifest.shards[shard_name(shard)] = digest
                    manifest.save(folder)
    finally:
        _drain(ticks, bar)


def _generate_on_ray(ray: Any, config: DatasetConfig, folder: Path, manifest: Manifest, todo: list[int], workers: int | None, bar: Any) -> None:
    """Make the shards ``todo`` as Ray tasks, at most ``workers`` at once; write each as it arrives and
    record them all in ``manifest`` at the end."""
    from agents.cluster import cluster_cpus

    task = ray.remote(num_cpus=1, max_retries=RAY_SHARD_RETRIES)(_ray_shard)
    limit = workers or cluster_cpus(ray)
    waiting, pending, digests = list(todo), {}, {}
    config_ref = ray.put(config)
    while waiting or pending:
        while waiting and len(pending) < limit:
            shard = waiting.pop(0)
            pending[task.remote(config_ref, shard, manifest.shard_range(shard))] = shard
        finished, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in finished:
            pending.pop(ref)
            shard, data, _ = ray.get(ref)
            digests[shard_name(shard)] = write_shard_bytes(folder / shard_name(shard), data)
            if bar is not None:
                bar.update(len(manifest.shard_range(shard)))
    manifest.shards.update(digests)


def _drain(ticks: Any, bar: Any) -> None:
    if ticks is None or bar is None:
        return
    while True:
        try:
            bar.update(ticks.get_nowait())
        except queue.Empty:
            return


def _total_rejected(folder: Path, manifest: Manifest) -> list[int]:
    total = np.zeros(len(REJECT_REASONS), dtype=np.int64)
    for name in manifest.shards:
        total += read_shard(folder / name, ("rejected",))["rejected"]
    return [int(v) for v in total]


def parse_part(spec: str) -> tuple[int, int]:
    """``"I/N"`` (process I of N side by side, each making every N-th item of a run) -> ``(I, N)``: the
    ``--part`` of ``vital-gym dataset select`` and ``vital-gym critic data``."""
    try:
        part, parts = (int(v) for v in spec.split("/"))
    except ValueError:
        raise ValueError(f"--part {spec}: give I/N, e.g. 0/2") from None
    if not 0 <= part < parts:
        raise ValueError(f"--part {spec}: need 0 <= I < N")
    return part, parts


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
