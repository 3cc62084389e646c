"""The refine-mode agent: a policy that starts by standing still, episodes from the matcher's choice, and
its training, saving and comparison with CMA-ES."""

import json

import numpy as np
import pytest

from agents.ppo.refine import RefinePolicy, standing_still
from agents.ppo.start import MatcherStart
from agents.ppo.train import RLConfig, load_policy, train
from tests.agents.test_dataset import tiny_config
from tests.agents.test_ppo_train import tiny_space_file  # noqa: F401  (fixture)
from vital_gym.envs import VitalMatchEnv
from vital_gym.params import Kind


def refine_env(space, checkpoint, **kwargs) -> VitalMatchEnv:
    config = tiny_config()
    render = {**config.render, "midi_note": 60}
    start = MatcherStart(str(checkpoint), 60, 0.7)
    return VitalMatchEnv(space=space, mode="refine", refine_action="delta", render=render, observation=config.observation, start=start, **kwargs)


def test_the_refine_policy_stands_still_until_it_learns_and_explores_the_continuous_values(tiny_checkpoint, tiny_space):
    from stable_baselines3 import PPO

    env = refine_env(tiny_space, tiny_checkpoint)
    model = PPO(RefinePolicy, env, policy_kwargs={"checkpoint": str(tiny_checkpoint)}, n_steps=4, batch_size=4, device="cpu", seed=0)
    obs, info = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    stay, _ = standing_still(env.space)
    assert np.array_equal(action, stay)
    _, _, _, _, after = env.step(action)
    assert np.array_equal(after["params"], info["params"])  # the mean action changes nothing
    continuous = np.array([p.kind is Kind.CONTINUOUS for p in env.space.parameters])
    switches = np.array([p.kind in (Kind.CATEGORICAL, Kind.TOGGLE) for p in env.space.parameters])
    moved, switched = [], 0
    for _ in range(50):
        drawn, _ = model.predict(obs, deterministic=False)
        x = env._apply_delta(drawn)
        moved.append(np.abs(x - info["params"])[continuous].mean())
        switched += int((x != info["params"])[switches].any())
    assert np.mean(moved) > 1e-3 and switched == 0  # continuous values explored; modules and categories kept
    # the log-probability is the free (continuous and integer) dimensions' alone
    import torch

    stay, discrete = standing_still(env.space)
    with torch.no_grad():
        observation = model.policy.obs_to_tensor(obs)[0]
        distribution = model.policy.get_distribution(observation)
        drawn = distribution.sample()
        std = model.policy.log_std.exp()[~torch.from_numpy(discrete)]
        expected = torch.distributions.Normal(torch.from_numpy(stay[~discrete]), std).log_prob(drawn[0, ~torch.from_numpy(discrete)]).sum()
        assert torch.allclose(distribution.log_prob(drawn)[0], expected) and torch.equal(drawn[0, torch.from_numpy(discrete)], torch.from_numpy(stay[discrete]))
    assert all(not p.requires_grad for p in model.policy.features_extractor.encoder.parameters())


def test_refine_mode_trains_from_the_matcher_saves_reloads_and_is_compared_with_cma_es(tmp_path, tiny_space_file, tiny_checkpoint, capsys):  # noqa: F811
    import importlib.util
    from pathlib import Path

    config = tiny_config()
    rl = RLConfig(
        algo="ppo",
        n_envs=2,
        n_timesteps=8,
        vec="subproc",
        out=str(tmp_path / "run"),
        n_eval=2,
        eval_every=8,
        start=str(tiny_checkpoint),
        policy_kwargs={"checkpoint": str(tiny_checkpoint)},
        env_kwargs={
            "space": tiny_space_file,
            "targets": "random",
            "mode": "refine",
            "refine_action": "delta",
            "max_steps": 2,
            "success_distance": 0.0,
            "render": config.render,
            "observation": config.observation,
        },
        hyperparams={"n_steps": 4, "batch_size": 4, "n_epochs": 1, "learning_rate": 1e-3},
    )
    history = train(rl, log=lambda *_: None)
    before = history["before"]
    assert before["best_distance"] <= before["start_distance"] and before["spectral_distance"] == pytest.approx(before["start_distance"])  # still
    meta = json.loads((tmp_path / "run" / "last" / "config.json").read_text())
    assert meta["start"] == str(tiny_checkpoint)
    env = refine_env(tiny_space_file, tiny_checkpoint)
    obs, _ = env.reset(seed=0)
    assert isinstance(load_policy(tmp_path / "run" / "last", env).policy, RefinePolicy)
    script = Path(__file__).parents[2] / "scripts" / "bench" / "eval_refine_agent.py"
    spec = importlib.util.spec_from_file_location("eval_refine_agent", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--policy", str(tmp_path / "run" / "last"), "--n", "2", "--budgets", "2", "3"]) == 0
    table = capsys.readouterr().out
    assert "| 2 |" in table and "| 3 |" in table and "agent - CMA-ES" in table
