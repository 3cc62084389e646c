"""An SB3 actor-critic policy whose actor is the supervised sound matcher, for one-shot ``VitalMatch-v0``.

Built through SB3's extension points, nothing patched:

* :class:`SoundMatcherEncoder` (``features_extractor_class``) is the supervised encoder; it returns the
  patch tokens ``(B, N, E)`` flattened to ``(B, N * E)``, SB3's feature vector;
* ``_build_mlp_extractor`` installs :class:`DecoderAndValue`: the actor latent is what the supervised decoder
  says of its best-scored hypothesis; the critic latent is an MLP on the mean-pooled tokens;
* the action distribution (``action_distribution``):

  - ``"layout"``: :class:`~agents.ppo.distributions.LayoutDistribution`. The actor latent is
    the raw outputs ``z`` and the log standard deviations of the continuous values in action units
    ``(B, 2 * action_dim)``: categorical and on/off blocks are drawn from the network's own logits, the
    continuous values from a Gaussian about ``tanh(z / 2)`` whose scale starts at the supervised spread
    heads (``DecoderConfig.spread``; a network without them starts at ``exp(log_std_init)``). PPO's
    gradient reaches the spread heads, so the exploration scale is learnt per sound.
  - ``"hypotheses"`` (default): :class:`~agents.ppo.distributions.HypothesesDistribution`, the mixture of every
    hypothesis' layout distribution weighted by the softmax of the decoder's scores. The actor latent is
    every hypothesis' raw outputs and continuous log standard deviations, and the scores,
    ``(B, K * 2 * action_dim + K)``. Exploration also tries the other hypotheses, and PPO learns which one
    to act with.
  - ``"gaussian"``: SB3's diagonal Gaussian over every action dimension. The actor latent is the action
    mean ``tanh(z / 2)`` ``(B, action_dim)``; ``_build`` sets SB3's ``action_net`` to the identity, and the
    log-std is one learnt value per dimension starting at ``log_std_init`` (default -2: std 0.14).

  Whichever, before any update the policy's deterministic action decodes to exactly the supervised
  network's prediction, its best-scored hypothesis (``tests/agents/test_ppo.py`` checks it).

A note-conditioned network (``DecoderConfig.note_conditioning``) is told ``midi_note``, the note the env
plays its presets at (``vital-gym ppo`` passes the env's); ``play_at`` changes it (the benchmark's
``ppo`` method tells each item's note).

``ortho_init`` defaults to False: SB3's orthogonal re-initialisation would overwrite the pretrained
weights. Without ``checkpoint`` the same architecture starts from random weights (``model`` gives its
config), which is PPO from scratch for comparisons.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from agents.dataset.shards import as_stored
from agents.ppo.distributions import HypothesesDistribution, LayoutDistribution
from agents.supervised.checkpoint import load_model
from agents.supervised.model import ModelConfig, SoundMatcher
from vital_gym.params import ParameterSpace

# What the actor latent carries for each action distribution (DecoderAndValue's ``latent``).
ACTOR_LATENTS = {"layout": "best", "hypotheses": "all", "gaussian": "mean"}
ACTION_DISTRIBUTIONS = tuple(ACTOR_LATENTS)
DEFAULT_ACTION_DISTRIBUTION = "hypotheses"


def build_matcher(checkpoint: str | None, model: dict[str, Any] | None, space: str | dict[str, Any] | None) -> tuple[SoundMatcher, ParameterSpace]:
    """The supervised network from a checkpoint, or a random one of config ``model`` for ``space``."""
    if checkpoint:
        matcher, own, _ = load_model(checkpoint)
        return matcher, own
    if space is None:
        raise ValueError("PPO from scratch needs the parameter space (policy_kwargs 'space')")
    own = ParameterSpace.from_spec(space)
    return SoundMatcher(own, ModelConfig.from_dict(model or {})), own


class SoundMatcherEncoder(BaseFeaturesExtractor):
    """Log-mel observation ``(B, 1, n_mels, frames)`` -> flattened patch tokens ``(B, N * E)``. The encoder
    reads the observation at the 256 levels its training data stored, as the matcher does, so the policy's
    first action is exactly the supervised model's prediction for the target."""

    def __init__(self, observation_space: gym.spaces.Box, encoder: nn.Module):
        with torch.no_grad():
            tokens = encoder(torch.zeros(1, *observation_space.shape))
        super().__init__(observation_space, features_dim=tokens.shape[1] * tokens.shape[2])
        self.encoder = encoder
        self.num_tokens, self.token_dim = tokens.shape[1], tokens.shape[2]

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.encoder(as_stored(observations)).flatten(1)


class DecoderAndValue(nn.Module):
    """SB3's ``mlp_extractor``. Actor latent, by ``latent``: ``"best"``, the best-scored hypothesis' raw
    outputs and the log standard deviations of its continuous values in action units ``(B, 2 * action_dim)``
    (zeros without spread heads); ``"all"``, the same of every hypothesis and their scores
    ``(B, K * 2 * action_dim + K)``; ``"mean"``, the best-scored hypothesis' action mean ``(B, action_dim)``.
    Critic latent: pooled tokens' MLP."""

    def __init__(
        self, decoder: nn.Module, num_tokens: int, token_dim: int, action_dim: int, value_hidden: int = 256, midi_note: int = 60, latent: str = "mean"
    ):
        super().__init__()
        self.decoder, self.num_tokens, self.token_dim, self.midi_note = decoder, num_tokens, token_dim, float(midi_note)
        self.latent, self.num_hypotheses = latent, decoder.num_hypotheses
        self.value = nn.Sequential(nn.LayerNorm(token_dim), nn.Linear(token_dim, value_hidden), nn.Tanh(), nn.Linear(value_hidden, value_hidden), nn.Tanh())
        widths = {"mean": action_dim, "best": 2 * action_dim, "all": self.num_hypotheses * (2 * action_dim + 1)}
        self.latent_dim_pi, self.latent_dim_vf = widths[latent], value_hidden

    def _tokens(self, features: torch.Tensor) -> torch.Tensor:
        return features.view(features.shape[0], self.num_tokens, self.token_dim)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        notes = features.new_full((features.shape[0],), self.midi_note)
        if self.latent == "mean":
            return SoundMatcher.actions(self.decoder(self._tokens(features), notes))
        z, scores, log_spread = self.decoder.predictive(self._tokens(features), notes)
        # A spread is the standard deviation of a value in [0, 1]; the action 2 v - 1 has twice it.
        log_std = log_spread + math.log(2.0) if log_spread is not None else torch.zeros_like(z)
        if self.latent == "all":
            return torch.cat([z.flatten(1), log_std.flatten(1), scores], 1)
        best = torch.arange(z.shape[0], device=z.device), scores.argmax(1)
        return torch.cat([z[best], log_std[best]], 1)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.value(self._tokens(features).mean(1))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)


class SoundMatcherPolicy(ActorCriticPolicy):
    """``PPO(SoundMatcherPolicy, env, policy_kwargs={"checkpoint": DIR})``; see the module docstring."""

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Box,
        lr_schedule,
        checkpoint: str | None = None,
        model: dict[str, Any] | None = None,
        space: str | dict[str, Any] | None = None,
        value_hidden: int = 256,
        midi_note: int = 60,
        log_std_init: float = -2.0,
        action_distribution: str = DEFAULT_ACTION_DISTRIBUTION,
        ortho_init: bool = False,
        **kwargs: Any,
    ):
        if action_distribution not in ACTION_DISTRIBUTIONS:
            raise ValueError(f"action_distribution={action_distribution!r}: one of {ACTION_DISTRIBUTIONS}")
        self.source = {"checkpoint": checkpoint, "model": model, "space": space}
        self.value_hidden, self.midi_note, self.action_distribution = value_hidden, int(midi_note), action_distribution
        # Built once: its encoder becomes the features extractor, its decoder the actor (held in a dict so
        # nn.Module does not register it before ``super().__init__``).
        matcher, self.space = build_matcher(checkpoint, model, space)
        self.pretrained = {"matcher": matcher}
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            features_extractor_class=SoundMatcherEncoder,
            features_extractor_kwargs={"encoder": self.pretrained["matcher"].encoder},
            log_std_init=log_std_init,
            ortho_init=ortho_init,
            share_features_extractor=True,
            **kwargs,
        )

    def _build_mlp_extractor(self) -> None:
        matcher = self.pretrained.pop("matcher")
        if matcher.decoder.action_dim != self.action_space.shape[0]:
            raise ValueError(
                f"the network predicts {matcher.decoder.action_dim} action dimensions; the env has {self.action_space.shape[0]} "
                "(a checkpoint of another parameter space?)"
            )
        fx = self.features_extractor
        latent = ACTOR_LATENTS[self.action_distribution]
        self.mlp_extractor = DecoderAndValue(
            matcher.decoder, fx.num_tokens, fx.token_dim, self.action_space.shape[0], self.value_hidden, self.midi_note, latent
        )

    def play_at(self, midi_note: int) -> None:
        """Act for presets played at ``midi_note`` from now on (a note-conditioned network's input; the env
        plays every preset at its own note, a benchmark item at the item's)."""
        self.midi_note = int(midi_note)
        self.mlp_extractor.midi_note = float(midi_note)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        """What SB3's ``policy.save`` needs to rebuild this policy: the source, not the built extractor."""
        data = super()._get_constructor_parameters()
        for key in ("features_extractor_class", "features_extractor_kwargs", "share_features_extractor"):
            data.pop(key, None)
        return {
            **data,
            **self.source,
            "value_hidden": self.value_hidden,
            "midi_note": self.midi_note,
            "action_distribution": self.action_distribution,
        }

    def _build(self, lr_schedule) -> None:
        if self.action_distribution == "gaussian":
            super()._build(lr_schedule)
            with torch.no_grad():  # the mean starts as the supervised action (the optimizer holds the same tensors)
                self.action_net.weight.copy_(torch.eye(self.action_net.weight.shape[0]))
                self.action_net.bias.zero_()
            return
        # SB3's _build knows only its own distributions; this is the same build with the layout's.
        self._build_mlp_extractor()
        self.action_dist = LayoutDistribution(self.space) if self.action_distribution == "layout" else HypothesesDistribution(self.space)
        spread = self.mlp_extractor.decoder.spread_heads is not None
        self.log_std = self.action_dist.proba_distribution_net(log_std_init=0.0 if spread else self.log_std_init)
        self.action_net = nn.Identity()
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor):
        if self.action_distribution == "gaussian":
            return super()._get_action_dist_from_latent(latent_pi)
        if self.action_distribution == "layout":
            raw, log_std = latent_pi.chunk(2, dim=1)
            return self.action_dist.proba_distribution(raw, log_std + self.log_std)
        k, d = self.mlp_extractor.num_hypotheses, self.action_space.shape[0]
        raw, log_std, scores = latent_pi.split([k * d, k * d, k], dim=1)
        return self.action_dist.proba_distribution(raw.view(-1, k, d), log_std.view(-1, k, d) + self.log_std, scores)
