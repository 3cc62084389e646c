"""A rollout buffer whose advantages are measured against a group of rollouts on the same target.

In one-shot ``VitalMatch-v0`` every episode is one action on one target, and how good a reward is depends
mostly on the target: a plucked sine is easy, a voice is hard. SB3's advantage ``r - V(s)`` needs the value
network to learn that per-target baseline from nothing, and until it has, the advantages are mostly the
targets' difficulty, not the actions' merit. Group-relative advantages (as in GRPO, Shao et al. 2024)
need no value network: ``G`` environments are given the same target at every step (``vital-gym ppo``
seeds them alike: ``RLConfig.group_size``), and each action's advantage is its reward minus the mean
reward of its group. The group mean is an unbiased baseline that already knows the target.

Environments ``[g * G, (g + 1) * G)`` form group ``g``. The buffer checks what it relies on: every episode
ended after one step, and the members of a group observed the same target. "The same" is up to
:data:`SAME_TARGET_TOLERANCE`: vita's sampler starts at a random position whatever the seed, so one preset
with the sampler on renders a little differently in each process (mean absolute log-mel difference about
0.01 where different targets differ by about 0.3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer

SAME_TARGET_TOLERANCE = 0.05  # mean absolute difference of two members' observations (log-mel in [0, 1])


class GroupRolloutBuffer(RolloutBuffer):
    """``RolloutBuffer`` with ``advantage = reward - mean reward of the group``; ``returns`` are the rewards
    (the value head still learns, though nothing uses it). Pass it to SB3 as ``rollout_buffer_class``
    with ``rollout_buffer_kwargs={"group_size": G}``."""

    def __init__(self, *args: Any, group_size: int = 2, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if group_size < 2 or self.n_envs % group_size:
            raise ValueError(f"group_size={group_size}: must be at least 2 and divide the number of environments ({self.n_envs})")
        self.group_size = group_size

    def compute_returns_and_advantage(self, last_values: torch.Tensor, dones: np.ndarray) -> None:
        if not (np.all(self.episode_starts == 1.0) and np.all(dones)):
            raise ValueError("group-relative advantages need one-step episodes (the env's one-shot mode)")
        steps, groups = self.buffer_size, self.n_envs // self.group_size
        obs = self.observations.reshape(steps, groups, self.group_size, -1)
        apart = np.abs(obs - obs[:, :, :1]).mean(-1).max()
        if apart > SAME_TARGET_TOLERANCE:
            raise ValueError(f"the environments of a group observed different targets (mean difference {apart:.3f}): seed the members of a group alike")
        rewards = self.rewards.reshape(steps, groups, self.group_size)
        self.advantages = (rewards - rewards.mean(-1, keepdims=True)).reshape(steps, self.n_envs).astype(np.float32)
        self.returns = self.rewards.copy()
