"""RayVecEnv against SB3's own vector envs: the VecEnv contract, and the same episodes for the same seeds."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.vec_env import DummyVecEnv

from tests.agents.test_dataset import tiny_config
from tests.conftest import TINY_SPACE
from vital_gym.envs import VitalMatchEnv
from vital_gym.params import ParameterSpace


def cartpole():
    return TimeLimit(gym.make("CartPole-v1").unwrapped, max_episode_steps=20)  # short episodes: auto-resets happen


def tiny_vital():
    config = tiny_config()
    return VitalMatchEnv(space=ParameterSpace.from_dict(TINY_SPACE), render=config.render, observation=config.observation)


def run(venv, seed: int, steps: int) -> list[tuple]:
    """Seeded reset, then ``steps`` steps of seeded random actions: everything the env returned."""
    venv.seed(seed)
    venv.action_space.seed(seed)
    trace = [("reset", venv.reset())]
    for _ in range(steps):
        obs, rewards, dones, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(venv.num_envs)]))
        terminal = [i.get("terminal_observation") for i in infos]
        trace.append((obs, rewards, dones, terminal, [i.get("TimeLimit.truncated") for i in infos]))
    venv.close()
    return trace


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, list):
                assert all((p is None and q is None) or np.array_equal(p, q) for p, q in zip(u, v))
            else:
                assert np.array_equal(u, v) if not isinstance(u, str) else u == v


@pytest.mark.parametrize("make, steps", [(cartpole, 40), (tiny_vital, 3)])
def test_ray_vec_env_gives_the_same_episodes_as_dummy_vec_env(ray_cluster, make, steps):
    from agents.ppo.ray_vec_env import RayVecEnv

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray worker runs: the reward's float sums then round alike
    try:
        expected = run(DummyVecEnv([make, make]), seed=7, steps=steps)
    finally:
        torch.set_num_threads(threads)
    assert_same(run(RayVecEnv([make, make]), seed=7, steps=steps), expected)
    if make is cartpole:
        assert any(d.any() for _, _, d, _, _ in expected[1:])  # the trace went through auto-resets


def test_ray_vec_env_attributes_methods_and_wrappers(ray_cluster):
    from agents.ppo.ray_vec_env import RayVecEnv

    venv = RayVecEnv([cartpole, cartpole])  # one per CPU of the test cluster
    assert venv.num_envs == 2 and venv.observation_space == cartpole().observation_space
    assert venv.get_attr("_max_episode_steps") == [20, 20]
    venv.set_attr("_max_episode_steps", 5, indices=[1])
    assert venv.get_attr("_max_episode_steps", indices=[0, 1]) == [20, 5]
    assert venv.has_attr("gravity") and not venv.has_attr("no_such_attribute")
    [(obs, _)] = venv.env_method("reset", seed=11, indices=[0])
    assert np.array_equal(obs, cartpole().reset(seed=11)[0])
    assert venv.env_is_wrapped(TimeLimit) == [True, True]
    venv.seed(3)
    first = venv.reset()
    venv.seed(3)
    assert np.array_equal(venv.reset(), first)  # seeds are used at the next reset, once
    assert not np.array_equal(venv.reset(), first)
    with pytest.raises(AttributeError):
        venv.get_attr("no_such_attribute")
    venv.close()
    venv.close()  # closing twice is harmless
