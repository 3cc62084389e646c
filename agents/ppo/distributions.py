"""An SB3 action distribution laid out like the env's action vector.

``VitalMatch-v0`` decodes a categorical parameter of k options from k action dimensions by argmax, and an
on/off parameter from the sign of one. A diagonal Gaussian about the supervised network's action explores
those blocks badly: with a small standard deviation the argmax almost never moves, so the choices that
shape a sound most (filter model, wavetable, modulation source and destination) are never tried; with a
large one every continuous value is thrown about as well.

:class:`LayoutDistribution` gives each block of :attr:`ParameterSpace.layout` its own kind of
distribution, from the network's raw outputs ``z`` ``(B, action_dim)`` (``agents/supervised/model.py``):

* categorical block of k dimensions: ``Categorical(logits=z[block])``; the action is the drawn option as
  a one-hot in [-1, 1] (+1 at the option, -1 elsewhere), its log-probability the categorical's;
* on/off dimension: ``Bernoulli(logit=z)``; the action is +1 (on) or -1 (off);
* continuous and integer dimensions: ``Normal(tanh(z / 2), std)`` in action units, where ``std`` is given
  per sound (the supervised spread heads, ``(B, action_dim)`` log standard deviations) and shifted by a
  learnt per-dimension ``log_std`` (SB3's name). Samples may leave [-1, 1]; the env clips them, and the
  log-probability is that of the unclipped sample, as SB3 does for its Gaussian.

The mode (``deterministic=True``) is the argmax option, the more likely switch and the mean: it decodes to
exactly the parameters the supervised network predicts.

As SB3's own distributions wrap a torch one, :class:`LayoutDistribution` wraps :class:`Layout`, a
``torch.distributions.Distribution`` built from torch's ``Categorical``, ``Bernoulli`` and ``Normal``; its
KL divergence is registered with ``torch.distributions.kl``, which TRPO's trust region needs.

A network of K hypotheses says K presets per sound and scores them. :class:`HypothesesDistribution`
(wrapping :class:`HypothesisMixture`) is the mixture of their layouts weighted by ``softmax(scores)``: an
action first picks a hypothesis, then draws from its layout, and its log-probability is the mixture's,
``logsumexp_k(log softmax(scores)_k + log p_k(a))``. Its mode is the best-scored hypothesis' layout mode
(the supervised prediction again), and PPO's gradient reaches the scores: the choice among hypotheses,
which the supervised loss trained on parameter closeness, is learnt from the reward. The mixture has no
closed-form entropy or KL divergence (SB3 then estimates the entropy from log-probabilities; TRPO cannot
use it).
"""

from __future__ import annotations

import torch
from stable_baselines3.common.distributions import Distribution
from torch import nn
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence, register_kl

from vital_gym.params import Kind, ParameterSpace


class LayoutIndex:
    """Where each kind of block sits in the action vector of ``space``."""

    def __init__(self, space: ParameterSpace):
        self.action_dim = space.action_dim
        self.continuous = torch.tensor([s.start for s in space.layout if s.kind in (Kind.CONTINUOUS, Kind.INTEGER)], dtype=torch.long)
        self.toggles = torch.tensor([s.start for s in space.layout if s.kind is Kind.TOGGLE], dtype=torch.long)
        by_size: dict[int, list[list[int]]] = {}
        for s in space.layout:
            if s.kind is Kind.CATEGORICAL:
                by_size.setdefault(s.stop - s.start, []).append(list(range(s.start, s.stop)))
        # Blocks of one size are stacked, (m, k) indices, so each size is one batched Categorical.
        self.categorical = [torch.tensor(blocks, dtype=torch.long) for _, blocks in sorted(by_size.items())]


class Layout(torch.distributions.Distribution):
    """Raw outputs ``(B, action_dim)`` and continuous log standard deviations (``(B, action_dim)`` or
    ``(action_dim,)``, read at the continuous dimensions only) -> a distribution over actions ``(B, action_dim)``."""

    arg_constraints: dict = {}

    def __init__(self, raw: torch.Tensor, log_std: torch.Tensor, index: LayoutIndex):
        if raw.shape[-1] != index.action_dim:
            raise ValueError(f"raw outputs of width {raw.shape[-1]}; the action layout has {index.action_dim} dimensions")
        self.index = index
        device = raw.device
        self.continuous, self.toggles = index.continuous.to(device), index.toggles.to(device)
        self.categorical = [idx.to(device) for idx in index.categorical]
        std = log_std.expand_as(raw)[:, self.continuous].exp()
        self.normal = Normal(torch.tanh(0.5 * raw[:, self.continuous]), std, validate_args=False)  # (B, C)
        self.switches = Bernoulli(logits=raw[:, self.toggles], validate_args=False)  # (B, S)
        self.options = [Categorical(logits=raw[:, idx], validate_args=False) for idx in self.categorical]  # (B, m) each
        self.template = raw
        super().__init__(raw.shape[:1], raw.shape[1:], validate_args=False)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """``(B, action_dim)`` -> ``(B,)``: categorical blocks read by argmax, switches by sign."""
        lp = self.normal.log_prob(actions[:, self.continuous]).sum(-1)
        lp = lp + self.switches.log_prob((actions[:, self.toggles] > 0).to(actions.dtype)).sum(-1)
        for idx, options in zip(self.categorical, self.options):
            lp = lp + options.log_prob(actions[:, idx].argmax(-1)).sum(-1)
        return lp

    def entropy(self) -> torch.Tensor:
        h = self.normal.entropy().sum(-1) + self.switches.entropy().sum(-1)
        return h + sum(options.entropy().sum(-1) for options in self.options)

    def _assemble(self, continuous: torch.Tensor, on: torch.Tensor, chosen: list[torch.Tensor]) -> torch.Tensor:
        a = torch.empty_like(self.template)
        a[:, self.continuous] = continuous.to(a.dtype)
        a[:, self.toggles] = on.to(a.dtype) * 2 - 1
        for idx, options in zip(self.categorical, chosen):
            a[:, idx] = nn.functional.one_hot(options, idx.shape[1]).to(a.dtype) * 2 - 1
        return a

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        if sample_shape != torch.Size():
            raise ValueError("Layout draws one action per batch row")
        with torch.no_grad():
            return self._assemble(self.normal.sample(), self.switches.sample(), [options.sample() for options in self.options])

    @property
    def mean(self) -> torch.Tensor:
        """The expected action ``(B, action_dim)``: ``tanh(z / 2)`` for continuous values and switches (``2 p - 1``),
        ``2 softmax(z) - 1`` for a categorical block; it decodes, as the mode does, to the network's prediction."""
        a = torch.empty_like(self.template)
        a[:, self.continuous] = self.normal.mean
        a[:, self.toggles] = 2 * self.switches.probs - 1
        for idx, options in zip(self.categorical, self.options):
            a[:, idx] = 2 * options.probs - 1
        return a

    @property
    def mode(self) -> torch.Tensor:
        return self._assemble(self.normal.mean, self.switches.logits > 0, [options.logits.argmax(-1) for options in self.options])


@register_kl(Layout, Layout)
def _kl_layout(p: Layout, q: Layout) -> torch.Tensor:
    kl = kl_divergence(p.normal, q.normal).sum(-1) + kl_divergence(p.switches, q.switches).sum(-1)
    return kl + sum(kl_divergence(a, b).sum(-1) for a, b in zip(p.options, q.options))


class LayoutDistribution(Distribution):
    """SB3's face of :class:`Layout` over the action layout of ``space`` (module docstring)."""

    def __init__(self, space: ParameterSpace):
        super().__init__()
        self.index = LayoutIndex(space)
        self.distribution: Layout | None = None

    @property
    def continuous_dims(self) -> torch.Tensor:
        return self.index.continuous

    @property
    def mean(self) -> torch.Tensor:
        """The continuous dimensions' means ``(B, C)``."""
        return self.distribution.normal.mean

    @property
    def std(self) -> torch.Tensor:
        """The continuous dimensions' standard deviations ``(B, C)``."""
        return self.distribution.normal.stddev

    def proba_distribution_net(self, log_std_init: float = 0.0) -> nn.Parameter:
        """The learnt shift of every continuous dimension's log standard deviation, ``(action_dim,)``."""
        return nn.Parameter(torch.full((self.index.action_dim,), float(log_std_init)), requires_grad=True)

    def proba_distribution(self, raw: torch.Tensor, log_std: torch.Tensor) -> LayoutDistribution:
        """``raw`` ``(B, action_dim)``: the network's raw outputs; ``log_std`` ``(B, action_dim)`` or
        ``(action_dim,)``: the continuous dimensions' log standard deviations in action units."""
        self.distribution = Layout(raw, log_std, self.index)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.distribution.log_prob(actions)

    def entropy(self) -> torch.Tensor:
        return self.distribution.entropy()

    def sample(self) -> torch.Tensor:
        return self.distribution.sample()

    def mode(self) -> torch.Tensor:
        return self.distribution.mode

    def actions_from_params(self, raw: torch.Tensor, log_std: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        self.proba_distribution(raw, log_std)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, raw: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        actions = self.actions_from_params(raw, log_std)
        return actions, self.log_prob(actions)


class HypothesisMixture(torch.distributions.Distribution):
    """Raw outputs ``(B, K, action_dim)``, continuous log standard deviations (``(B, K, action_dim)`` or
    ``(action_dim,)``) and hypothesis scores ``(B, K)`` -> the mixture of the K hypotheses' :class:`Layout`
    weighted by ``softmax(scores)``, a distribution over actions ``(B, action_dim)``."""

    arg_constraints: dict = {}

    def __init__(self, raw: torch.Tensor, log_std: torch.Tensor, scores: torch.Tensor, index: LayoutIndex):
        if raw.dim() != 3 or scores.shape != raw.shape[:2]:
            raise ValueError(f"raw outputs {tuple(raw.shape)} and scores {tuple(scores.shape)}: expected (B, K, action_dim) and (B, K)")
        self.batch, self.k = raw.shape[:2]
        flat = raw.flatten(0, 1)
        self.components = Layout(flat, log_std.expand_as(raw).flatten(0, 1), index)  # (B * K) rows
        self.choice = Categorical(logits=scores, validate_args=False)
        super().__init__(raw.shape[:1], raw.shape[2:], validate_args=False)

    def _of_choice(self, per_row: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Row ``k[b]`` of each sound's K rows ``(B * K, action_dim)`` -> ``(B, action_dim)``."""
        return per_row.view(self.batch, self.k, -1)[torch.arange(self.batch, device=k.device), k]

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """``(B, action_dim)`` -> ``(B,)``, summed over the hypotheses that could have drawn each action."""
        per_hypothesis = self.components.log_prob(actions.repeat_interleave(self.k, 0)).view(self.batch, self.k)
        return torch.logsumexp(self.choice.logits + per_hypothesis, -1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        if sample_shape != torch.Size():
            raise ValueError("HypothesisMixture draws one action per batch row")
        with torch.no_grad():
            return self._of_choice(self.components.sample(), self.choice.sample())

    @property
    def mode(self) -> torch.Tensor:
        """The best-scored hypothesis' layout mode ``(B, action_dim)``."""
        return self._of_choice(self.components.mode, self.choice.logits.argmax(-1))


class HypothesesDistribution(Distribution):
    """SB3's face of :class:`HypothesisMixture` over the action layout of ``space`` (module docstring)."""

    def __init__(self, space: ParameterSpace):
        super().__init__()
        self.index = LayoutIndex(space)
        self.distribution: HypothesisMixture | None = None

    def proba_distribution_net(self, log_std_init: float = 0.0) -> nn.Parameter:
        """The learnt shift of every continuous dimension's log standard deviation, ``(action_dim,)``."""
        return nn.Parameter(torch.full((self.index.action_dim,), float(log_std_init)), requires_grad=True)

    def proba_distribution(self, raw: torch.Tensor, log_std: torch.Tensor, scores: torch.Tensor) -> HypothesesDistribution:
        """``raw`` ``(B, K, action_dim)``: every hypothesis' raw outputs; ``log_std``: their continuous log
        standard deviations in action units, ``(B, K, action_dim)`` or ``(action_dim,)``; ``scores`` ``(B, K)``."""
        self.distribution = HypothesisMixture(raw, log_std, scores, self.index)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.distribution.log_prob(actions)

    def entropy(self) -> None:
        return None  # no closed form: SB3 estimates it as the mean negative log-probability

    def sample(self) -> torch.Tensor:
        return self.distribution.sample()

    def mode(self) -> torch.Tensor:
        return self.distribution.mode

    def actions_from_params(self, raw: torch.Tensor, log_std: torch.Tensor, scores: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        self.proba_distribution(raw, log_std, scores)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, raw: torch.Tensor, log_std: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        actions = self.actions_from_params(raw, log_std, scores)
        return actions, self.log_prob(actions)
