import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents.ppo.buffers import GroupRolloutBuffer

OBS = spaces.Box(0.0, 1.0, (1, 2, 3), np.float32)
ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)


def filled(rewards: np.ndarray, group_size: int, same_targets: bool = True, starts: float = 1.0) -> GroupRolloutBuffer:
    """A buffer of ``rewards`` ``(steps, n_envs)`` where each group observed one target per step."""
    steps, n_envs = rewards.shape
    buffer = GroupRolloutBuffer(steps, OBS, ACT, n_envs=n_envs, group_size=group_size)
    rng = np.random.default_rng(0)
    for t in range(steps):
        targets = rng.random((n_envs // group_size, *OBS.shape), dtype=np.float32)
        obs = np.repeat(targets, group_size, axis=0) if same_targets else rng.random((n_envs, *OBS.shape), dtype=np.float32)
        buffer.add(obs, np.zeros((n_envs, 2), np.float32), rewards[t], np.full(n_envs, starts), torch.zeros(n_envs, 1), torch.zeros(n_envs))
    return buffer


def test_advantages_are_rewards_less_their_groups_mean():
    rewards = np.array([[1.0, 3.0, 10.0, 14.0], [0.0, 2.0, -1.0, -1.0]], np.float32)
    buffer = filled(rewards, group_size=2)
    buffer.compute_returns_and_advantage(torch.zeros(4), np.ones(4, bool))
    assert np.allclose(buffer.advantages, [[-1, 1, -2, 2], [-1, 1, 0, 0]])
    assert np.array_equal(buffer.returns, rewards)


def test_groups_that_saw_different_targets_are_refused():
    buffer = filled(np.zeros((2, 4), np.float32), group_size=2, same_targets=False)
    with pytest.raises(ValueError, match="different targets"):
        buffer.compute_returns_and_advantage(torch.zeros(4), np.ones(4, bool))


def test_episodes_longer_than_one_step_are_refused():
    buffer = filled(np.zeros((2, 4), np.float32), group_size=2, starts=0.0)
    with pytest.raises(ValueError, match="one-step episodes"):
        buffer.compute_returns_and_advantage(torch.zeros(4), np.ones(4, bool))


@pytest.mark.parametrize("group_size", [1, 3])
def test_a_group_size_that_does_not_divide_the_envs_is_refused(group_size):
    with pytest.raises(ValueError, match=f"group_size={group_size}"):
        GroupRolloutBuffer(2, OBS, ACT, n_envs=4, group_size=group_size)
