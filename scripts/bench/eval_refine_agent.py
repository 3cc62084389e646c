"""The refine-mode agent against CMA-ES at equal render budgets, both from the matcher's choice.

    HF_HUB_OFFLINE=1 python scripts/bench/eval_refine_agent.py --policy runs/ppo-refine/best --n 32 --budgets 8 16 32

A policy trained by ``vital-gym ppo --config ppo_refine`` (agents/ppo/refine.py) is evaluated on ``--n``
targets its training never drew: the env's evaluation targets (held-out files of a folder, or presets drawn
from evaluation seeds). Every episode starts where the policy's training did, from the matcher's choice for
the target (``start`` of its run: the closest of the model's hypotheses by rendering). For each budget B:
the agent acts B steps with its mean action (one render each) and keeps the closest render it saw; CMA-ES
(:func:`agents.refine.refine`, as ``vital-gym match --refine B`` runs it, on one renderer) spends B renders
from the same start. Printed per budget: each method's mean spectral distance (the start's for scale) and
the paired difference agent minus CMA-ES, with its 95% confidence interval (negative: the agent closer).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from agents.benchmark.metrics import mean_ci95
from agents.ppo.train import env_start, load_policy, make_eval_env, play, refines, train_and_eval_targets
from agents.refine import refine
from vital_gym.render import Renderer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", required=True, help="a refine-mode policy folder saved by vital-gym ppo (best/ or last/)")
    ap.add_argument("--n", type=int, default=32, help="evaluation targets")
    ap.add_argument("--budgets", type=int, nargs="+", default=[8, 16, 32], help="renders per target")
    ap.add_argument("--seed", type=int, default=0, help="CMA-ES's seed")
    args = ap.parse_args(argv)
    folder = Path(args.policy)
    meta = json.loads((folder / "config.json").read_text())
    env_kwargs = dict(meta["env_kwargs"])
    if not refines(env_kwargs):
        raise SystemExit(f"{folder}: not a refine-mode policy (its env's mode is {env_kwargs.get('mode', 'one_shot')!r})")
    _, eval_targets = train_and_eval_targets(env_kwargs.pop("targets", "random"), meta.get("held_out_every", 4), env_kwargs)
    env = make_eval_env(
        {**env_kwargs, **env_start(meta.get("start"), env_kwargs, meta.get("start_choice", "closest")), "success_distance": 0.0}, eval_targets, args.n
    )
    model = load_policy(folder, env)
    renderer = Renderer(env.render_config)
    n = len(env.targets.targets)
    print(f"{n} evaluation targets, from {meta.get('start') or 'the base preset'}; policy {folder} ({meta.get('timesteps', '?')} env steps)")
    print("| renders | start | CMA-ES | agent | agent - CMA-ES (95% CI) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for budget in args.budgets:
        starts, agent, cma = [], [], []
        for k in range(n):
            env.targets.k, env.max_steps = k, budget  # target k, played for ``budget`` steps
            episode = play(model, env, k)
            cfg, start = env.render_config, episode.start["spectral_distance"]
            searched = refine(
                env.target.audio, episode.start["params"], env.codec, renderer, cfg.midi_note, cfg.velocity, budget, seed=args.seed + k, start_distance=start
            )
            starts.append(start)
            agent.append(episode.best)
            cma.append(searched.distance)
        diff, half = mean_ci95(np.array(agent) - np.array(cma))
        print(f"| {budget} | {np.mean(starts):.3f} | {np.mean(cma):.3f} | {np.mean(agent):.3f} | {diff:+.3f} ± {half:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
