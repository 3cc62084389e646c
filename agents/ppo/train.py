"""PPO (or an sb3-contrib algorithm) on ``VitalMatch-v0``, warm-started from the supervised model.

    vital-gym ppo --config ppo --checkpoint runs/sup/best -o runs/ppo
    vital-gym ppo --config ppo --checkpoint none -o runs/ppo-scratch                       # from scratch
    vital-gym ppo --checkpoint runs/sup/best --targets audio:data/voice -o runs/ppo-voice  # out-of-domain
    vital-gym ppo --targets dataset:core -o runs/ppo-dataset   # a dataset config's presets (sources, archetypes) as targets
    vital-gym ppo --config ppo_refine -o runs/ppo-refine      # the refine-mode agent, from the matcher's choice
    tensorboard --logdir runs

One-shot envs train :class:`~agents.ppo.policy.SoundMatcherPolicy` (the supervised network as the actor);
refine-mode envs train :class:`~agents.ppo.refine.RefinePolicy`, whose episodes start from ``start``'s
matcher choice (:class:`~agents.ppo.start.MatcherStart`) and are evaluated over whole episodes. A one-shot
run with ``start`` (and ``start_choice: top``, the supervised model's own choice) is rewarded with the
improvement over that choice's score instead of the score itself.

Hyperparameters are rl-baselines3-zoo-style YAML (``configs/rl/*.yaml``, shipped as ``ppo`` and ``trpo``: one block per env id). Training
runs ``n_envs`` environments in ``SubprocVecEnv`` workers (forkserver). With ``group_size`` G > 1, every G
consecutive environments are seeded alike, so they play the same target at every step, and advantages are
measured against the group's mean reward (:mod:`agents.ppo.buffers`) instead of a learnt value. For a folder of targets, every
``held_out_every``-th file is held out: training never sees it, and evaluation uses only those. For drawn
targets (random presets, or a dataset config's mixture: :mod:`agents.dataset.targets`), evaluation uses
``n_eval`` presets drawn from seeds training does not use. Evaluation runs
before training and every ``eval_every`` steps, deterministically (the policy's mean), and logs mean
reward, spectral distance and a target/render spectrogram image; the best policy is saved. TensorBoard
also gets SB3's own losses, KL and entropy, and the mean of every reward component over rollouts.

Policies are saved as ``policy.safetensors`` + ``config.json`` (no pickle): :func:`load_policy`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image, configure
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from agents.ppo.buffers import GroupRolloutBuffer
from agents.ppo.policy import DEFAULT_ACTION_DISTRIBUTION, SoundMatcherPolicy
from agents.ppo.refine import RefinePolicy
from agents.ppo.start import START_CHOICES, MatcherStart
from agents.supervised.checkpoint import read_config, without_encoder_file
from agents.supervised.model import ModelConfig
from vital_gym.envs import VitalMatchEnv
from vital_gym.features import MelConfig
from vital_gym.params import ParameterSpace
from vital_gym.render import RenderConfig
from vital_gym.resources import find_config
from vital_gym.targets import Target, targets_spec

ENV_ID = "VitalMatch-v0"


def algorithms() -> dict[str, type[BaseAlgorithm]]:
    from sb3_contrib import TRPO

    return {"ppo": PPO, "trpo": TRPO}


@dataclass
class RLConfig:
    algo: str = "ppo"
    n_envs: int = 2
    group_size: int = 1  # > 1: envs in groups of this size share targets; group-relative advantages
    n_timesteps: int = 20000
    policy_kwargs: dict[str, Any] = field(default_factory=dict)  # SoundMatcherPolicy: checkpoint, log_std_init, ...
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # VitalMatchEnv arguments (targets included)
    hyperparams: dict[str, Any] = field(default_factory=dict)  # the algorithm's own (n_steps, batch_size, ...)
    held_out_every: int = 4
    n_eval: int = 16
    eval_every: int = 2048
    vec: str = "subproc"  # or "dummy" (one process), or "ray" (Ray actors: agents/ppo/ray_vec_env.py)
    ray_address: str | None = None  # with vec "ray": the cluster to join (None: start Ray here, or RAY_ADDRESS's)
    start: str | None = None  # a model folder whose choice starts refine episodes / is one-shot rewards' reference
    start_choice: str = "closest"  # the start: "closest" of the model's hypotheses by rendering, or its "top"-scored one
    seed: int = 0
    out: str = "runs/ppo"

    @classmethod
    def from_yaml(cls, path: str | Path, env_id: str = ENV_ID, **overrides: Any) -> RLConfig:
        blocks = yaml.safe_load(Path(path).read_text()) or {}
        if env_id not in blocks:
            raise ValueError(f"{path} has no block for {env_id} (has {sorted(blocks)})")
        d = {**blocks[env_id], **{k: v for k, v in overrides.items() if v is not None}}
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
        config = cls(**d)
        config.check()
        return config

    def check(self) -> None:
        if self.algo not in algorithms():
            raise ValueError(f"algo {self.algo!r}: one of {sorted(algorithms())}")
        if self.vec not in VEC_ENVS:
            raise ValueError(f"vec {self.vec!r}: one of {VEC_ENVS}")
        if self.group_size < 1 or self.n_envs % self.group_size:
            raise ValueError(f"group_size={self.group_size} must be at least 1 and divide n_envs={self.n_envs}")
        if self.group_size > 1 and self.refine:
            raise ValueError("group_size > 1 needs one-step episodes: env_kwargs mode 'one_shot'")
        if self.algo == "trpo" and self.policy_kwargs.get("action_distribution", DEFAULT_ACTION_DISTRIBUTION) == "hypotheses":
            raise ValueError("TRPO's trust region needs a closed-form KL divergence: action_distribution 'hypotheses' has none (use 'layout')")
        if self.start_choice not in START_CHOICES:
            raise ValueError(f"start_choice {self.start_choice!r}: one of {START_CHOICES}")

    @property
    def refine(self) -> bool:
        return refines(self.env_kwargs)


def refines(env_kwargs: dict[str, Any]) -> bool:
    """Does an env of ``env_kwargs`` play refine episodes (else one-shot ones)?"""
    return env_kwargs.get("mode", "one_shot") == "refine"


def policy_class(env_kwargs: dict[str, Any]) -> type[SoundMatcherPolicy] | type[RefinePolicy]:
    """The policy an env of ``env_kwargs`` is played by: one-shot, the supervised actor; refine, the refiner."""
    return RefinePolicy if refines(env_kwargs) else SoundMatcherPolicy


def train_and_eval_targets(targets: Any, held_out_every: int, env_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The targets spec training uses, and the one evaluation uses (disjoint). ``dataset:CONFIG`` (a dataset
    YAML) becomes a :class:`~agents.dataset.targets.DatasetTargets` with the env's render settings."""
    targets = targets_spec(targets)
    if isinstance(targets, dict) and targets.get("kind") in ("audio", "presets"):
        return {**targets, "held_out_every": held_out_every, "part": "train"}, {**targets, "held_out_every": held_out_every, "part": "held_out"}
    if isinstance(targets, dict) and targets.get("kind") == "dataset":
        from agents.dataset.targets import DatasetTargets

        if not targets.get("path"):
            raise ValueError("targets kind 'dataset' needs a dataset config: dataset:core, or dataset:PATH.yaml")
        targets = DatasetTargets(find_config("dataset", targets["path"]), env_kwargs.get("render"))
        env_space = ParameterSpace.from_spec(env_kwargs.get("space", "core"))
        if ParameterSpace.from_spec(targets.config.space).fingerprint != env_space.fingerprint:
            raise ValueError(f"dataset targets: {targets.config.space!r} is not the env's parameter space '{env_space.name}'")
    return targets, targets  # drawn presets: evaluation draws from seeds training does not use


class FixedTargets:
    """A fixed list of targets, served in order (evaluation)."""

    def __init__(self, targets: list[Target]):
        self.targets, self.k = targets, 0

    def sample(self, rng: np.random.Generator) -> Target:
        target = self.targets[self.k % len(self.targets)]
        self.k += 1
        return target


VEC_ENVS = ("subproc", "dummy", "ray")


def make_vec_env(config: RLConfig, fns: list[Callable[[], VitalMatchEnv]]) -> VecEnv:
    """The training environments: worker processes here, this process, or Ray actors on a cluster."""
    if config.vec == "ray":
        from agents.ppo.ray_vec_env import RayVecEnv

        return RayVecEnv(fns, address=config.ray_address)
    return SubprocVecEnv(fns, start_method="forkserver") if config.vec == "subproc" else DummyVecEnv(fns)


EVAL_SEED = 10_000_019  # seeds of held-out random targets; training envs are seeded from config.seed


def make_eval_env(env_kwargs: dict[str, Any], targets: Any, n: int) -> VitalMatchEnv:
    """An env whose episodes run over ``n`` fixed held-out targets (fewer if the held-out folder is smaller)."""
    env = VitalMatchEnv(**{**env_kwargs, "targets": targets, "render_mode": "rgb_array"})
    source = env.targets
    if hasattr(source, "files"):
        fixed = [source.get(k) for k in range(min(n, len(source.files)))]
    else:
        fixed = [source.sample(np.random.default_rng([EVAL_SEED, k])) for k in range(n)]
    env.targets = FixedTargets(fixed)
    return env


@dataclass
class Episode:
    """One episode played with the policy's mean action."""

    start: dict[str, Any]  # reset's info (refine: the start's terms and parameters)
    ret: float  # the sum of its rewards
    distance: float  # the last render's spectral distance
    best: float  # the closest render's (a refine episode's start included)


def play(model: BaseAlgorithm, env: VitalMatchEnv, seed: int) -> Episode:
    """Reset ``env`` with ``seed`` and act with ``model``'s mean action until the episode ends."""
    obs, start = env.reset(seed=seed)
    best, total, done = start.get("spectral_distance", np.inf), 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        total, best, done = total + reward, min(best, info["spectral_distance"]), terminated or truncated
    return Episode(start, total, info["spectral_distance"], best)


def evaluate(model: BaseAlgorithm, env: VitalMatchEnv) -> tuple[dict[str, float], np.ndarray | None]:
    """Over the fixed targets, acting with the policy's mean: the mean return and final spectral distance;
    refine episodes also the start's distance and the best distance seen (the start included)."""
    env.targets.k = 0
    episodes, image = [], None
    for k in range(len(env.targets.targets)):
        episodes.append(play(model, env, k))
        if k == 0:
            image = env.render()
    metrics = {"mean_reward": float(np.mean([e.ret for e in episodes])), "spectral_distance": float(np.mean([e.distance for e in episodes]))}
    if env.mode == "refine":
        metrics.update(
            start_distance=float(np.mean([e.start["spectral_distance"] for e in episodes])), best_distance=float(np.mean([e.best for e in episodes]))
        )
    return metrics, image


class RewardTermsCallback(BaseCallback):
    """Rollout means of every reward component the env reports in ``info``."""

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            for k in ("spectral_distance", "clap_similarity", "score"):
                if k in info:
                    self.logger.record_mean(f"rollout/{k}", float(info[k]))
        return True


class HeldOutEvalCallback(BaseCallback):
    """Evaluate on the fixed held-out targets every ``every`` steps; keep the best policy."""

    def __init__(self, env: VitalMatchEnv, every: int, save: Callable[[str, dict[str, float]], None]):
        super().__init__()
        self.env, self.every, self.save = env, every, save
        self.best, self.last_eval, self.history = -np.inf, 0, []

    def run(self) -> dict[str, float]:
        metrics, image = evaluate(self.model, self.env)
        self.history.append({"timesteps": self.num_timesteps, **metrics})
        for k, v in metrics.items():
            self.logger.record(f"eval/{k}", v)
        if image is not None:
            self.logger.record("eval/target_vs_render", Image(image, "HWC"), exclude=("stdout", "log", "json", "csv"))
        self.logger.dump(self.num_timesteps)
        if metrics["mean_reward"] > self.best:
            self.best = metrics["mean_reward"]
            self.save("best", metrics)
        return metrics

    def _on_rollout_start(self) -> None:
        # SB3 starts a rollout after the update on the previous one: the policy has learnt from exactly
        # ``num_timesteps`` samples here (mid-rollout, the last rollout's update would still be missing).
        if self.num_timesteps - self.last_eval >= self.every:
            self.last_eval = self.num_timesteps
            self.run()

    def _on_step(self) -> bool:
        return True


def policy_source(policy_kwargs: dict[str, Any], env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """What rebuilds the network without the supervised checkpoint: its model config and space (the policy
    file holds every weight, so an encoder's pretrained file is not needed either)."""
    checkpoint = policy_kwargs.get("checkpoint")
    if checkpoint:
        meta = read_config(checkpoint)
        return {"model": without_encoder_file(meta["model"]), "space": meta["space"]}
    return {"model": without_encoder_file(policy_kwargs.get("model") or {}), "space": policy_kwargs.get("space", env_kwargs.get("space", "core"))}


def save_policy(folder: Path, model: BaseAlgorithm, config: RLConfig, source: dict[str, Any], metrics: dict[str, float]) -> Path:
    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    save_model(model.policy, str(folder / "policy.safetensors"))  # handles SB3's shared feature-extractor aliases
    policy_kwargs = {**{k: v for k, v in config.policy_kwargs.items() if k != "checkpoint"}, **source}
    meta = {
        "algo": config.algo,
        "policy_kwargs": policy_kwargs,
        "env_kwargs": config.env_kwargs,
        "timesteps": model.num_timesteps,
        "metrics": metrics,
        "warm_start": config.policy_kwargs.get("checkpoint"),  # provenance: the supervised model it started from
        "start": config.start,  # the matcher whose choice starts each episode (refine) or is the reward's reference
        "start_choice": config.start_choice,
        "held_out_every": config.held_out_every,  # which files of a folder evaluation held out
        "seed": config.seed,
    }
    (folder / "config.json").write_text(json.dumps(meta, indent=2, default=str))
    return folder


def load_policy(folder: str | Path, env: Any, device: str = "cpu") -> BaseAlgorithm:
    """Rebuild the algorithm around ``env`` and load the saved policy weights (safetensors only)."""
    from safetensors.torch import load_model

    folder = Path(folder)
    meta = json.loads((folder / "config.json").read_text())
    algo = algorithms()[meta["algo"]]
    # The rollout size only matters for training; a loaded policy is for acting (or for training anew).
    model = algo(policy_class(meta["env_kwargs"]), env, policy_kwargs=meta["policy_kwargs"], device=device, n_steps=2, batch_size=2)
    load_model(model.policy, str(folder / "policy.safetensors"), device=device)
    return model


def env_start(start: str | None, env_kwargs: dict[str, Any], choice: str = "closest") -> dict[str, Any]:
    """The env argument ``start``: the ``choice`` of the matcher in folder ``start``, at the note and velocity
    of ``env_kwargs``' renders (nothing for None)."""
    if not start:
        return {}
    render = RenderConfig.from_dict(env_kwargs.get("render"))
    return {"start": MatcherStart(start, render.midi_note, render.velocity, choice=choice)}


def make_env_fn(env_kwargs: dict[str, Any], targets: Any, seed: int) -> Callable[[], VitalMatchEnv]:
    def make() -> VitalMatchEnv:
        torch.set_num_threads(1)  # one process per core
        env = VitalMatchEnv(**{**env_kwargs, "targets": targets})
        env.reset(seed=seed)
        return env

    return make


def check_observation(policy_kwargs: dict[str, Any], env_kwargs: dict[str, Any]) -> None:
    """Refuse an env whose observation is not the one the network reads: a ViT takes any spectrogram of its
    shape, so another front end or resolution would run, silently, on features it never saw."""
    env = MelConfig.from_dict(env_kwargs.get("observation"))
    checkpoint = policy_kwargs.get("checkpoint")
    if checkpoint:
        trained = MelConfig.from_dict(read_config(checkpoint).get("observation"))
        if trained != env:
            raise ValueError(f"{checkpoint} was trained on observations {trained}; the env gives {env}: set env_kwargs' observation to match")
        return
    frontend = ModelConfig.from_dict(policy_kwargs.get("model") or {}).encoder.frontend
    if frontend != env.frontend:
        raise ValueError(f"policy_kwargs' model reads the '{frontend}' frontend; the env's observation is '{env.frontend}'")


class ProgressCallback(BaseCallback):
    """A progress bar of the environment steps, with the time left."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def train(config: RLConfig, log=print, progress: bool = False) -> dict[str, Any]:
    """Train; returns the evaluation history (before training, during, and at the end). ``progress`` shows
    a progress bar of the environment steps."""
    config.check()
    out = Path(config.out)
    env_kwargs = {**config.env_kwargs, **env_start(config.start, config.env_kwargs, config.start_choice)}
    check_observation(config.policy_kwargs, env_kwargs)
    train_targets, eval_targets = train_and_eval_targets(env_kwargs.pop("targets", "random"), config.held_out_every, env_kwargs)
    # The envs' seeds are theirs alone (the algorithm is not given a seed, which would reseed them
    # seed + index): members of a group share one, so they draw the same targets in step.
    fns = [make_env_fn(env_kwargs, train_targets, config.seed * 1000 + i // config.group_size) for i in range(config.n_envs)]
    venv = make_vec_env(config, fns)
    eval_env = make_eval_env(env_kwargs, eval_targets, config.n_eval)
    policy_kwargs = dict(config.policy_kwargs)
    if not policy_kwargs.get("checkpoint"):  # from scratch: the architecture for the env's space
        policy_kwargs.setdefault("space", config.env_kwargs.get("space", "core"))
    if not config.refine:
        policy_kwargs.setdefault("midi_note", RenderConfig.from_dict(env_kwargs.get("render")).midi_note)  # the env's note
    algo = algorithms()[config.algo]
    set_random_seed(config.seed)  # python, numpy, torch: the policy's draws and its new weights
    groups = {"rollout_buffer_class": GroupRolloutBuffer, "rollout_buffer_kwargs": {"group_size": config.group_size}} if config.group_size > 1 else {}
    model = algo(policy_class(env_kwargs), venv, policy_kwargs=policy_kwargs, device="auto", **groups, **config.hyperparams)
    # What rebuilds this policy without the checkpoint, its distribution included (a default may change).
    source = policy_source(policy_kwargs, config.env_kwargs)
    if not config.refine:
        source.update(midi_note=policy_kwargs["midi_note"], action_distribution=model.policy.action_distribution)
    save = lambda name, metrics: save_policy(out / name, model, config, source, metrics)  # noqa: E731
    evaluator = HeldOutEvalCallback(eval_env, config.eval_every, save)
    # TensorBoard under OUT/tb; a custom logger also keeps learn() from configuring its own.
    model.set_logger(configure(str(out / "tb"), ["stdout", "tensorboard"] if log is print else ["tensorboard"]))
    metrics0, _ = evaluate(model, eval_env)  # before any update (the callback only starts inside learn())
    evaluator.history.append({"timesteps": 0, **metrics0})
    log(f"before training: {metrics0}")
    # TRPO's Fisher-vector products differentiate twice; the fused CPU attention kernels cannot.
    from torch.nn.attention import SDPBackend, sdpa_kernel

    attention = sdpa_kernel(SDPBackend.MATH) if config.algo == "trpo" else contextlib.nullcontext()
    try:
        with attention:
            callbacks = [RewardTermsCallback(), evaluator] + ([ProgressCallback(config.n_timesteps)] if progress else [])
            model.learn(config.n_timesteps, callback=callbacks, progress_bar=False)
        final = evaluator.run()  # after the last rollout's update
    finally:
        venv.close()
    save("last", final)
    log(f"after {model.num_timesteps} steps: {final}")
    history = {"before": metrics0, "after": final, "best_mean_reward": evaluator.best, "curve": evaluator.history}
    (out / "eval_history.json").write_text(json.dumps(history, indent=2))
    return history
