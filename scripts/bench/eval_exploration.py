"""How far does each PPO action distribution explore from the supervised prediction, by kind of parameter?

For ``--n`` targets drawn as ``vital-gym ppo --targets dataset:CONFIG`` draws them, the policy built from
``--checkpoint`` (before any update) draws ``--draws`` actions per target with each action distribution;
every draw is decoded as the env decodes it and compared with the deterministic action (the supervised
prediction). Printed per distribution: the share of categorical choices and of on/off switches that a draw
changes, and the mean absolute change of the continuous and integer values (normalised to [0, 1]).

    HF_HUB_OFFLINE=1 python scripts/bench/eval_exploration.py --n 32 --draws 64
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from agents.dataset.targets import DatasetTargets
from agents.ppo.distributions import LayoutIndex
from agents.ppo.policy import ACTION_DISTRIBUTIONS, SoundMatcherPolicy
from agents.supervised.checkpoint import read_config
from vital_gym.envs import VitalMatchEnv
from vital_gym.params import Kind


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="agents/models/core_cpu")
    ap.add_argument("--config", default="core", help="the dataset config the targets are drawn like")
    ap.add_argument("--n", type=int, default=32, help="targets")
    ap.add_argument("--draws", type=int, default=64, help="actions drawn per target and distribution")
    ap.add_argument("--log-std-init", type=float, default=-2.0, help="the gaussian distribution's (as configs/rl/ppo.yaml)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    render = {"note_seconds": 1.5, "render_seconds": 2.0}
    meta = read_config(args.checkpoint)
    env = VitalMatchEnv(space=meta["space"], targets=DatasetTargets(args.config, render), render=render, observation=meta.get("observation"))
    space = env.space
    obs = torch.stack([torch.from_numpy(env.reset(seed=args.seed * 100_000 + k)[0]) for k in range(args.n)])
    kinds = np.array([p.kind.value for p in space.parameters])
    discrete = {"categorical": kinds == Kind.CATEGORICAL.value, "on/off": kinds == Kind.TOGGLE.value}
    continuous = (kinds == Kind.CONTINUOUS.value) | (kinds == Kind.INTEGER.value)
    index = LayoutIndex(space)
    print(f"{args.n} targets like dataset config '{args.config}', {args.draws} draws each, from {args.checkpoint}")
    print(
        f"{len(index.categorical)} categorical block sizes, {discrete['categorical'].sum()} categorical, "
        f"{discrete['on/off'].sum()} on/off, {continuous.sum()} continuous/integer parameters"
    )
    print(f"{'distribution':>12} | {'categorical changed':>19} | {'on/off changed':>14} | {'continuous mean |change|':>24}")
    for name in ACTION_DISTRIBUTIONS:
        torch.manual_seed(args.seed)
        policy = SoundMatcherPolicy(
            env.observation_space, env.action_space, lambda _: 0.0, checkpoint=args.checkpoint, action_distribution=name, log_std_init=args.log_std_init
        )
        with torch.no_grad():
            dist = policy.get_distribution(obs)
            mode = dist.mode().numpy()
            draws = np.stack([dist.sample().numpy() for _ in range(args.draws)])  # (draws, n, action_dim)
        x0 = np.stack([space.action_to_vector(np.clip(a, -1, 1)) for a in mode])
        x = np.stack([[space.action_to_vector(np.clip(a, -1, 1)) for a in d] for d in draws])
        changed = x != x0[None]
        shares = {k: changed[..., m].mean() for k, m in discrete.items()}
        moved = np.abs(x - x0[None])[..., continuous].mean()
        print(f"{name:>12} | {shares['categorical']:>19.3f} | {shares['on/off']:>14.3f} | {moved:>24.4f}")


if __name__ == "__main__":
    main()
