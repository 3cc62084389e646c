"""A learned refiner: PPO in ``VitalMatch-v0``'s refine mode, starting from the matcher's choice.

Refine mode (``mode="refine"``, ``refine_action="delta"``) observes the target's log-mel, the current
preset's log-mel and its parameter vector, and acts with a change to the parameters; each step is one
render, so an episode of ``max_steps`` steps spends as many renders as CMA-ES (:mod:`agents.refine`) with
that budget. Episodes start where ``vital-gym match`` would start refining: :class:`~agents.ppo.start.MatcherStart`
gives the env the closest of a trained model's candidates for the target.

:class:`RefinePolicy` is an SB3 ``MultiInputActorCriticPolicy`` (built through its extension points):

* :class:`RefineFeatures` embeds target and current log-mels with the supervised model's encoder
  (frozen: its view of a sound is what the model learnt from the data; the agent learns what to do with
  it) and reads ``(B, 3E + P)``: both embeddings averaged over tokens, their difference, and the parameters;
* actor and critic are MLPs on those features;
* the action distribution (:class:`FreeDimsGaussian`) is SB3's diagonal Gaussian over the continuous and
  integer dimensions alone: the discrete blocks (switches, filter models, wavetables, routes) always take
  their "no change" value, so, as CMA-ES does, the agent refines the values of the matcher's choice and
  keeps its discrete choices (a Gaussian of tiny scale on them instead would make every log-probability
  ratio overflow);
* ``_build`` makes the policy start by standing still: the action network's weights are zero and its
  bias is "no change" for every block (0 for continuous and integer dimensions, -1 for categorical ones,
  0 for on/off ones, inside their dead zone). The continuous changes start as Gaussian exploration of
  scale ``exp(log_std_init)`` (times the env's ``delta_scale``), a random search like CMA-ES's first
  generation, that PPO then shapes.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.distributions import DiagGaussianDistribution, sum_independent_dims
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.distributions import Normal

from agents.dataset.shards import as_stored
from agents.ppo.policy import build_matcher
from vital_gym.params import Kind, ParameterSpace


class RefineFeatures(BaseFeaturesExtractor):
    """``{"target", "current": (B, 1, n_mels, frames), "params": (B, P)}`` -> ``(B, 3E + P)``: the frozen
    encoder's mean tokens of target and current, target minus current, and the parameters."""

    def __init__(self, observation_space: gym.spaces.Dict, encoder: nn.Module):
        with torch.no_grad():
            dim = encoder(torch.zeros(1, *observation_space["target"].shape)).shape[-1]
        super().__init__(observation_space, features_dim=3 * dim + observation_space["params"].shape[0])
        self.encoder = encoder.requires_grad_(False)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            target = self.encoder(as_stored(observations["target"])).mean(1)
            current = self.encoder(as_stored(observations["current"])).mean(1)
        return torch.cat([target, current, target - current, observations["params"]], dim=1)


class RefinePolicy(MultiInputActorCriticPolicy):
    """``PPO(RefinePolicy, refine_env, policy_kwargs={"checkpoint": DIR})``; see the module docstring.
    Without ``checkpoint`` the encoder is the architecture ``model`` for ``space`` with random weights."""

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        lr_schedule,
        checkpoint: str | None = None,
        model: dict[str, Any] | None = None,
        space: str | dict[str, Any] | None = None,
        log_std_init: float = -1.0,
        net_arch: dict[str, list[int]] | None = None,
        **kwargs: Any,
    ):
        self.source = {"checkpoint": checkpoint, "model": model, "space": space}
        matcher, self.space = build_matcher(checkpoint, model, space)
        if self.space.action_dim != action_space.shape[0]:
            raise ValueError(f"the model's space '{self.space.name}' has {self.space.action_dim} action dimensions; the env has {action_space.shape[0]}")
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch or {"pi": [256, 256], "vf": [256, 256]},
            features_extractor_class=RefineFeatures,
            features_extractor_kwargs={"encoder": matcher.encoder},
            log_std_init=log_std_init,
            ortho_init=False,  # SB3's orthogonal initialisation would overwrite the pretrained encoder
            **kwargs,
        )

    def _build(self, lr_schedule) -> None:
        stay, discrete = standing_still(self.space)
        self.action_dist = FreeDimsGaussian(self.space.action_dim, ~discrete)
        super()._build(lr_schedule)
        with torch.no_grad():
            self.action_net.weight.zero_()
            self.action_net.bias.copy_(torch.from_numpy(stay))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        """What SB3's ``policy.save`` needs to rebuild this policy: the source, not the built extractor."""
        data = super()._get_constructor_parameters()
        for key in ("features_extractor_class", "features_extractor_kwargs"):
            data.pop(key, None)
        return {**data, **self.source}


class FreeDimsGaussian(DiagGaussianDistribution):
    """SB3's diagonal Gaussian over the ``free`` dimensions ``(action_dim,)`` bool; every other dimension
    is always its mean. Log-probability and entropy are the free dimensions'."""

    def __init__(self, action_dim: int, free: np.ndarray):
        super().__init__(action_dim)
        self.free = torch.from_numpy(np.asarray(free, dtype=bool))

    def proba_distribution(self, mean_actions: torch.Tensor, log_std: torch.Tensor) -> FreeDimsGaussian:
        self.mean_actions = mean_actions
        free = self.free.to(mean_actions.device)
        self.distribution = Normal(mean_actions[:, free], log_std[free].exp().expand(mean_actions.shape[0], -1))
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return sum_independent_dims(self.distribution.log_prob(actions[:, self.free.to(actions.device)]))

    def entropy(self) -> torch.Tensor:
        return sum_independent_dims(self.distribution.entropy())

    def sample(self) -> torch.Tensor:
        actions = self.mean_actions.clone()
        actions[:, self.free.to(actions.device)] = self.distribution.rsample()
        return actions

    def mode(self) -> torch.Tensor:
        return self.mean_actions


def standing_still(space: ParameterSpace) -> tuple[np.ndarray, np.ndarray]:
    """The delta action ``(action_dim,)`` that changes nothing (0 for continuous, integer and on/off
    dimensions, -1 for categorical ones), and which dimensions are discrete blocks (categorical, on/off)."""
    stay = np.zeros(space.action_dim, dtype=np.float32)
    discrete = np.zeros(space.action_dim, dtype=bool)
    for p, s in zip(space.parameters, space.layout):
        if p.kind is Kind.CATEGORICAL:
            stay[s.slice] = -1.0
        discrete[s.slice] = p.kind in (Kind.CATEGORICAL, Kind.TOGGLE)
    return stay, discrete
