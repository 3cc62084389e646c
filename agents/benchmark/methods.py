"""The methods the benchmark compares. Each turns a target into a Vital preset; the harness renders it.

A method has a ``name`` and ``predict(item) -> Prediction``; ``prepare(items)`` runs once per test set
before the items (Syntheon uses it to run the whole set in one subprocess). A method never raises for one
bad item: it returns a :class:`Prediction` with ``error`` set, which the benchmark records as a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from agents.benchmark.testsets import TEST_SEED, TestItem
from agents.dataset.shards import Manifest, dequantise, read_shard
from agents.library import pooled_features
from vital_gym.audio import write_wav
from vital_gym.features import NEIGHBOUR_POOL, MelConfig, pool_logmel, spectrogram
from vital_gym.params import Kind, ParameterSpace
from vital_gym.preset import Preset, PresetCodec, PresetError, init_preset
from vital_gym.render import RenderConfig, Renderer
from vital_gym.rewards import MultiResolutionSTFTDistance


@dataclass
class Prediction:
    preset: Preset | None
    error: str | None = None
    seconds: float | None = None  # the method's own time for this item, when it measures it itself


class Method(Protocol):
    name: str

    def prepare(self, items: Sequence[TestItem]) -> None: ...

    def predict(self, item: TestItem) -> Prediction: ...


class InitPreset:
    """Vital's init preset, whatever the target: the floor every method must clear."""

    name = "init"

    def prepare(self, items: Sequence[TestItem]) -> None:
        pass

    def predict(self, item: TestItem) -> Prediction:
        return Prediction(init_preset())


class RandomPreset:
    """A preset drawn from the space's priors, seeded by ``seed`` and the item's name."""

    name = "random"

    def __init__(self, codec: PresetCodec, seed: int = 0):
        self.codec, self.seed = codec, seed

    def prepare(self, items: Sequence[TestItem]) -> None:
        pass

    def predict(self, item: TestItem) -> Prediction:
        rng = np.random.default_rng([self.seed, zlib.crc32(f"{item.set}/{item.name}".encode())])
        return Prediction(self.codec.to_preset(self.codec.space.sample(rng, prior=True), name="random"))


class LibraryLookup:
    """The best-matching preset of a folder by the environment's spectral distance: browsing a library.

    Library presets are auditioned at the target's note and the library velocity (renders are cached per
    note); the target's own file, and any preset with identical settings, is excluded. Method ``library``
    browses ``--library`` (default: the human set's own folder, leave-one-out); ``shipped-library`` the
    presets shipped with vital-gym, a library from other packs than any test set's.
    """

    def __init__(self, folder: str | Path, render: RenderConfig, velocity: float | None = None, name: str = "library"):
        self.name = name
        self.folder = Path(folder)
        files = sorted(self.folder.rglob("*.vital")) if self.folder.is_dir() else []
        self.presets: list[tuple[Path, Preset]] = []
        for path in files:
            try:
                self.presets.append((path.resolve(), Preset.load(path)))
            except PresetError:
                continue  # a bad library file is simply not a candidate
        if not self.presets:
            raise FileNotFoundError(f"library lookup: no loadable .vital files in {self.folder}")
        self.renderer = Renderer(render)
        self.velocity = render.velocity if velocity is None else velocity
        self.distance = MultiResolutionSTFTDistance()
        self._renders: dict[int, list[np.ndarray | None]] = {}

    def prepare(self, items: Sequence[TestItem]) -> None:
        pass

    def _library_at(self, note: int) -> list[np.ndarray | None]:
        if note not in self._renders:
            renders: list[np.ndarray | None] = []
            for _, preset in self.presets:
                try:
                    result = self.renderer.render(preset, note, self.velocity)
                    renders.append(result.audio if result.status.ok else None)
                except Exception:  # noqa: BLE001 - an unrenderable library preset is not a candidate
                    renders.append(None)
            self._renders[note] = renders
        return self._renders[note]

    def predict(self, item: TestItem) -> Prediction:
        own = item.path.resolve() if item.path else None
        own_json = item.preset.settings if item.preset is not None else None
        self.distance.set_target(item.audio)
        best, best_d = None, np.inf
        for (path, preset), audio in zip(self.presets, self._library_at(item.midi_note)):
            if audio is None or path == own or (own_json is not None and preset.settings == own_json):
                continue
            d = self.distance(audio)
            if d < best_d:
                best, best_d = preset, d
        return Prediction(best) if best is not None else Prediction(None, "no usable library preset")


def open_training_set(dataset: str | Path, codec: PresetCodec, test_seed: int = TEST_SEED) -> Manifest:
    """A generated dataset a baseline may learn from: the benchmark's space, not the synthetic set's seed
    (``test_seed``), no human bases."""
    folder = Path(dataset)
    manifest = Manifest.load(folder)
    if manifest.space_fingerprint != codec.space.fingerprint:
        raise ValueError(f"dataset {folder} was made with another parameter space than '{codec.space.name}'")
    if int(manifest.config.get("seed", -1)) == test_seed:
        raise ValueError(f"dataset {folder} uses the synthetic test set's seed {test_seed}: it holds the test presets")
    if manifest.base_presets:
        raise ValueError(f"dataset {folder} perturbs human presets; the dataset baselines take space-only datasets")
    if not manifest.shards:
        raise FileNotFoundError(f"dataset {folder} has no finished shard yet")
    return manifest


class MeanPreset:
    """One preset for every target: the training data's mean, the best constant guess under the loss.

    Continuous and integer parameters take their mean (integers then rounded), on/off and categorical ones
    their most frequent value. A network trained with an MSE/cross-entropy parameter loss that learns
    nothing from the audio converges to this preset, so the gap between it and a model is what the model
    learned from listening.
    """

    name = "mean"

    def __init__(self, dataset: str | Path, codec: PresetCodec, test_seed: int = TEST_SEED):
        folder = Path(dataset)
        manifest = open_training_set(folder, codec, test_seed)
        params = np.concatenate([read_shard(folder / n, ("params",))["params"] for n in sorted(manifest.shards)])
        space = codec.space
        x = params.mean(0)
        for i, p in enumerate(space.parameters):
            if p.kind in (Kind.TOGGLE, Kind.CATEGORICAL):
                counts = np.bincount(ParameterSpace.discrete_index(params[:, i], p.n_values), minlength=p.n_values)
                x[i] = ParameterSpace.discrete_value(int(np.argmax(counts)), p.n_values)
        self.codec, self.x = codec, codec.canonical(x)
        self.description = f"the mean of {len(params)} samples of {folder}"

    def prepare(self, items: Sequence[TestItem]) -> None:
        pass

    def predict(self, item: TestItem) -> Prediction:
        return Prediction(self.codec.to_preset(self.x, name="mean"))


class NearestNeighbour:
    """The training sample whose log-mel is nearest the target's (Euclidean, after pooling).

    Log-mels are average-pooled by ``pool`` (mel bands, frames) to keep the index small: 100K samples of
    128 x 173 pool to 64 x 44, 1.1 GB as float32 (kept in float32 so a query is one matrix product, not a
    conversion of the whole index). A dataset generated with the synthetic set's seed (``test_seed``) is refused.

    ``max_samples`` searches only the training set's first samples (whole shards in index order, the last
    one cut): how the baseline scales with data, e.g. against a model trained on as many.

    With ``refine_budget`` > 0 (method ``nearest+refine``) the neighbour is refined by CMA-ES as the model's
    prediction is (``Matcher.refine``: screening renders on ``render_workers`` threads, the best checked
    exactly): how good a start the model is, against the same search from the neighbour. Each item starts
    from fresh screening synths, so its result does not depend on the items before it.
    """

    def __init__(
        self,
        dataset: str | Path,
        codec: PresetCodec,
        render: RenderConfig,
        pool: tuple[int, int] = NEIGHBOUR_POOL,
        refine_budget: int = 0,
        seed: int = 0,
        max_samples: int | None = None,
        test_seed: int = TEST_SEED,
        render_workers: int | None = None,
    ):
        self.name = "nearest+refine" if refine_budget else "nearest"
        self.refine_budget, self.seed = refine_budget, seed
        self.folder = Path(dataset)
        self.manifest = open_training_set(self.folder, codec, test_seed)
        self.codec, self.pool = codec, pool
        self.mel = spectrogram(MelConfig.from_dict(self.manifest.config.get("observation")), render.sample_rate)
        if max_samples is not None and max_samples < 1:
            raise ValueError(f"max_samples={max_samples}: give at least 1")
        feats, params, count = [], [], 0
        for name in sorted(self.manifest.shards):
            if max_samples is not None and count >= max_samples:
                break
            shard = read_shard(self.folder / name, ("logmel", "params"))
            feats.append(pool_logmel(torch.from_numpy(dequantise(shard["logmel"])), pool))
            params.append(shard["params"])
            count += len(shard["params"])
        self.features = torch.cat(feats)[:max_samples]  # (N, D) float32
        self.norms = (self.features**2).sum(1)
        self.params = np.concatenate(params)[:max_samples]
        first = "" if max_samples is None else "the first "
        self.description = f"{first}{len(self.params)} samples of {self.folder}"
        if refine_budget:
            from agents.match import candidate_renderers
            from vital_gym.render import Renderer

            self.exact, self.screening = Renderer(render), candidate_renderers(render, render_workers)
            self.description += f", CMA-ES refinement with {refine_budget} renders"

    def prepare(self, items: Sequence[TestItem]) -> None:
        pass

    def nearest(self, audio: np.ndarray) -> int:
        """Index of the training sample nearest ``audio`` ``(channels, samples)``."""
        q = pooled_features(self.mel, audio, self.pool)  # quantised as the dataset stores it
        d = self.norms - 2.0 * (self.features @ q)
        return int(torch.argmin(d))

    def predict(self, item: TestItem) -> Prediction:
        k = self.nearest(item.audio)
        x = self.params[k]
        if self.refine_budget:
            from agents.refine import refine

            for r in self.screening:
                r.start_fresh()
            x = refine(item.audio, x, self.codec, self.screening, item.midi_note, item.velocity, self.refine_budget, seed=self.seed, exact=self.exact).x
        return Prediction(self.codec.to_preset(x, name=f"{self.name}-{k}"))


class Supervised:
    """A trained :class:`~agents.supervised.model.SoundMatcher`, optionally refined by CMA-ES through Vita.

    The network sees the target's log-mel; its K hypotheses and ``draws`` presets drawn per hypothesis are
    rendered at the target's note and velocity and the closest kept, as ``vital-gym match`` does
    (``select=False``, method ``supervised-top``: its best-scored hypothesis, no render); with a ``critic``
    (default: the model folder's, if any; False: none), the drawn ones are those the critic ranks first in a
    larger pool (:mod:`agents.supervised.critic`). With
    ``refine_budget`` > 0 the prediction is then refined for that many more renders (``agents/refine.py``).
    ``neighbours`` (the model folder's dataset index, :mod:`agents.neighbours`) and ``library`` (the shipped
    presets, :mod:`agents.library`) add their shortlists to the candidates, as ``vital-gym match`` does.
    Candidates are screened on ``render_workers`` threads; each item starts from fresh screening synths, so
    its result does not depend on the items before it.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        codec: PresetCodec,
        refine_budget: int = 0,
        seed: int = 0,
        select: bool = True,
        draws: int = 0,
        critic: str | Path | bool = True,
        library: bool = False,
        render_workers: int | None = None,
        neighbours: bool = False,
        test_seed: int = TEST_SEED,
    ):
        from agents.library import shipped_library_dir
        from agents.match import Matcher
        from agents.neighbours import NEIGHBOURS_FILE

        if neighbours and not (Path(checkpoint) / NEIGHBOURS_FILE).is_file():
            raise FileNotFoundError(f"the model in {checkpoint} has no dataset index ({NEIGHBOURS_FILE}; vital-gym checkpoint neighbours makes one)")
        self.matcher = Matcher(
            checkpoint,
            render_workers=render_workers,
            critic=critic if select else False,
            library=[shipped_library_dir()] if library else None,
            neighbours=neighbours,
        )
        self.library, self.neighbours = library, neighbours
        if neighbours and self.matcher.neighbours.seed == test_seed:
            raise ValueError(f"the dataset index of {checkpoint} was made with the synthetic test set's seed {test_seed}: it holds the test presets")
        if self.matcher.space.fingerprint != codec.space.fingerprint:
            raise ValueError(f"checkpoint {checkpoint} was trained on space '{self.matcher.space.name}', not '{codec.space.name}'")
        self.refine_budget, self.seed, self.select, self.draws = refine_budget, seed, select, draws if select else 0
        extras = ("+neighbours" if neighbours else "") + ("+library" if library else "") + ("+refine" if refine_budget else "")
        self.name = "supervised-top" if not select else "supervised" + extras
        where = Path(checkpoint).resolve()
        where = where.relative_to(Path.cwd()) if where.is_relative_to(Path.cwd()) else where  # no home paths in reports
        k = self.matcher.model.num_hypotheses
        if not select:
            choice = ", its best-scored hypothesis (no render)" if k > 1 else ""
        elif self.draws:
            draws = f"{self.draws} draw{'s' if self.draws > 1 else ''}"
            choice = f", the closest by rendering of its {k} hypotheses and {draws} of each ({k * (1 + self.draws)} renders)"
        else:
            choice = f", the closest of its {k} hypotheses by rendering" if k > 1 else ""
        self.description = f"the model in {where}" + choice
        if self.matcher.critic is not None and self.draws:
            pool = k * (1 + self.matcher.critic.config.pool_draws)
            self.description += f", the drawn ones ranked first by its critic{'' if critic is True else f' in {critic}'} of {pool}"
        if neighbours:
            n, k = len(self.matcher.neighbours), self.matcher.neighbour_count
            self.description += f", the {k} samples nearest the target by sound of the {n} of its dataset index"
        if library:
            n, k = len(self.matcher.library), self.matcher.library_shortlist
            self.description += f", and the {k} presets nearest the target by sound of the {n} shipped with vital-gym"
        if library and neighbours:
            self.description += " (`vital-gym match`'s default)"
        self.description += f", CMA-ES refinement with {refine_budget} renders" if refine_budget else ""

    def prepare(self, items: Sequence[TestItem]) -> None:
        pass

    def predict(self, item: TestItem) -> Prediction:
        m = self.matcher
        for r in m.candidate_renderers:
            r.start_fresh()
        if self.library or self.neighbours:  # as vital-gym match does it: a library preset or dataset sample may be the closest
            result = m.match(item.audio, item.midi_note, item.velocity, self.refine_budget, self.seed, True, self.draws)
            return Prediction(result.preset)
        x, _, distance, _ = m.closest(item.audio, item.midi_note, item.velocity, self.select, self.draws, self.seed)
        if self.refine_budget:
            x = m.refine(item.audio, x, item.midi_note, item.velocity, self.refine_budget, self.seed, distance).x
        return Prediction(self.matcher.codec.to_preset(x, name=self.name))


class RLPolicy:
    """A policy saved by ``vital-gym ppo`` (PPO or TRPO), acting with its mean on the target's log-mel."""

    name = "ppo"

    def __init__(self, folder: str | Path, codec: PresetCodec):
        from agents.ppo.train import load_policy
        from vital_gym.envs import VitalMatchEnv

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"no saved policy at {folder} (vital-gym ppo writes best/ and last/)")
        meta = json.loads((folder / "config.json").read_text())
        if meta["env_kwargs"].get("mode", "one_shot") != "one_shot":
            raise ValueError(f"policy {folder} refines a preset step by step: compare it with CMA-ES by scripts/bench/eval_refine_agent.py")
        self.env = VitalMatchEnv(**{**meta["env_kwargs"], "targets": "random"})  # its spaces and log-mel settings
        if self.env.space.fingerprint != codec.space.fingerprint:
            raise ValueError(f"policy {folder} acts in space '{self.env.space.name}', not '{codec.space.name}'")
        self.model = load_policy(folder, self.env)
        self.name = meta.get("algo", "ppo")
        self.description = f"{folder} ({meta.get('timesteps', '?')} env steps)"
        if "warm_start" in meta:  # policies saved before it was recorded do not say
            start = meta["warm_start"]
            self.description += f", warm-started from {start}" if start else ", trained from random weights"

    def prepare(self, items: Sequence[TestItem]) -> None:
        pass

    def predict(self, item: TestItem) -> Prediction:
        obs = self.env.features(item.audio)[None]  # the env's observation of this target
        self.model.policy.play_at(item.midi_note)  # the note its preset is rendered at, as supervised methods are told
        action, _ = self.model.predict(obs, deterministic=True)
        codec = self.env.codec
        return Prediction(codec.to_preset(codec.canonical(self.env.space.action_to_vector(action)), name=self.name))


class Syntheon:
    """gudgud96/syntheon's Vital matcher, run in its own virtual environment (scripts/setup_syntheon.sh).

    ``prepare`` writes the set's targets as 16-bit wavs and runs ``syntheon_runner.py`` on all of them in
    one subprocess (the model loads once); ``seconds`` is Syntheon's own time per item. An item it fails
    on, or the whole subprocess failing or timing out, is recorded as a failure.
    """

    name = "syntheon"

    def __init__(self, python: str | Path, sample_rate: int, timeout_per_item: float = 120.0):
        self.python = Path(python).absolute()  # not resolve(): a venv's python is a symlink to the base one
        if not self.python.is_file():
            raise FileNotFoundError(f"Syntheon: no python at {self.python}; run scripts/setup_syntheon.sh")
        self.sample_rate, self.timeout_per_item = sample_rate, timeout_per_item
        self._results: dict[str, Prediction] = {}

    def prepare(self, items: Sequence[TestItem]) -> None:
        self._results = {}
        with tempfile.TemporaryDirectory(prefix="syntheon-") as tmp:
            jobs = []
            for k, item in enumerate(items):
                wav = write_wav(Path(tmp) / f"{k:04d}.wav", item.audio, self.sample_rate)
                jobs.append({"key": f"{item.set}/{item.name}", "wav": str(wav), "out": str(Path(tmp) / f"{k:04d}.vital")})
            (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
            runner = Path(__file__).with_name("syntheon_runner.py")
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            try:
                proc = subprocess.run(
                    [str(self.python), str(runner), str(Path(tmp) / "jobs.json"), str(Path(tmp) / "results.json")],
                    cwd=tmp,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60 + self.timeout_per_item * len(items),
                )
                failure = None if proc.returncode == 0 else f"runner exited {proc.returncode}: {proc.stderr[-300:]}"
            except subprocess.TimeoutExpired:
                failure = "timed out"
            except OSError as e:  # the interpreter could not be started
                failure = f"could not run {self.python}: {e}"
            results_path = Path(tmp) / "results.json"
            results = json.loads(results_path.read_text()) if results_path.is_file() else {}
            for job in jobs:
                r = results.get(job["key"])
                if r is None:
                    self._results[job["key"]] = Prediction(None, f"syntheon: {failure or 'no result'}")
                elif r.get("error"):
                    self._results[job["key"]] = Prediction(None, f"syntheon: {r['error']}", r.get("seconds"))
                else:
                    try:
                        preset = Preset.load(job["out"])  # validated: out-of-range values are clamped
                        self._results[job["key"]] = Prediction(preset, None, r.get("seconds"))
                    except PresetError as e:
                        self._results[job["key"]] = Prediction(None, f"syntheon wrote an unusable preset: {e}", r.get("seconds"))

    def predict(self, item: TestItem) -> Prediction:
        return self._results.get(f"{item.set}/{item.name}", Prediction(None, "syntheon: not run (prepare was not called)"))
