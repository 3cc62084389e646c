"""The supervised loss, split by parameter kind, on the decoder's raw outputs (see ``model.py``).

* continuous and integer parameters: MSE between ``sigmoid(z)`` and the normalised value;
* on/off: binary cross-entropy on the logit ``z``;
* categorical: cross-entropy over the block's logits, or, with a Gumbel temperature set
  (:meth:`ParameterLoss.set_gumbel_temperature`, annealed by the training script), the negative log of
  the target's entry in a Gumbel-softmax sample: noisier, relaxed gradients early, plain CE as tau -> 0;
* modulation slots: a set. Vital's slot order means nothing, so predicted slots are matched to target
  slots order-independently (Hungarian matching on the per-pair loss, as in DETR) and the matched pairs'
  losses are averaged: source cross-entropy, plus destination cross-entropy and amount MSE where the
  target slot is connected.

Targets are the dataset's canonical parameter vectors ``x`` ``(B, P)`` in [0, 1].

``parameter_weights`` ``(P,)`` (e.g. :meth:`~agents.supervised.sensitivity.Sensitivity.loss_weights`)
weigh each continuous dimension, on/off logit and categorical block inside its term; they are rescaled to
mean 1 over the parameters each term uses, so :class:`LossWeights` keeps balancing the terms.

``rotations``: groups of modules whose order the sound cannot tell, e.g. ``[["osc_1", "osc_2", "osc_3"]]``.
Three oscillators with the same controls sound the same whichever slot holds which, so a loss that pins
each to its slot asks the network for an order it cannot hear, and it hedges: each slot predicts the
average of the oscillators. With ``rotations`` the target's modules are rotated through the group (slot
``i`` takes module ``i + r``, for each ``r``) and each sample is scored against the rotation its
prediction fits best (:meth:`ParameterLoss.align`), as the modulation slots are matched below. Rotations,
not every permutation: Vital's oscillator FM and ring modulation take the next oscillator (1 <- 2 <- 3
<- 1), which a rotation keeps and a swap does not. Modulation routes to a rotated module's controls are
not renamed (only ``osc_1`` has most destinations), and :meth:`ParameterLoss.metrics` still compares slot
by slot.

``ignore_switched_off``: a parameter of a module that the target switches off (``osc_2_level`` when
``osc_2_on`` is off; see :func:`module_switches`) cannot be heard, so its error is not counted for that
sample; the switch itself always is. Weighted means are taken per sample, then over the batch.

:class:`HypothesisLoss` trains a decoder with K hypotheses (``model.py``): relaxed winner-takes-all over
the per-sample losses (Guzman-Rivera et al. 2012; Rupprecht et al. 2017), and a score per hypothesis that
learns which one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from vital_gym.params import Kind, ParameterSpace


@dataclass(frozen=True)
class LossWeights:
    continuous: float = 1.0
    toggle: float = 0.2
    categorical: float = 0.2
    modulation: float = 0.2


def _index_pairs(pairs: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """[(action dim, parameter index), ...] -> two long tensors (empty when there are none)."""
    return torch.tensor([d for d, _ in pairs], dtype=torch.long), torch.tensor([i for _, i in pairs], dtype=torch.long)


def module_switches(space: ParameterSpace) -> np.ndarray:
    """``(P,)``: for each parameter, the index of its module's on/off switch (the toggle named
    ``<group>_on``, e.g. ``osc_1_on`` for ``osc_1_level``), or -1 where it has none or is the switch."""
    switch = {p.group: i for i, p in enumerate(space.parameters) if p.kind is Kind.TOGGLE and p.name == f"{p.group}_on"}
    return np.array([switch.get(p.group, -1) if switch.get(p.group) != i else -1 for i, p in enumerate(space.parameters)])


def rotation_indices(space: ParameterSpace, groups: list[list[str]]) -> torch.Tensor:
    """``(R, P)`` column indices: row ``r`` reads a parameter vector with every group rotated by ``r``
    (slot ``i`` takes module ``i + r``; groups of unequal length rotate by ``r`` modulo their own length).
    Row 0 is the identity; no groups give just it. Each group's modules must have the same controls."""
    identity = np.arange(len(space.parameters))
    if not groups:
        return torch.as_tensor(identity[None])
    for group in groups:
        unknown = [g for g in group if g not in space.groups]
        if len(group) < 2 or unknown:
            raise ValueError(f"rotations: {group} must name two or more of space '{space.name}''s groups {sorted(space.groups)}")
        controls = [[name.removeprefix(g) for name in space.groups[g]] for g in group]
        if any(c != controls[0] for c in controls):
            raise ValueError(f"rotations: the modules {group} do not have the same controls")
    rows = []
    for r in range(max(len(g) for g in groups)):
        row = identity.copy()
        for group in groups:
            for i, g in enumerate(group):
                source = group[(i + r) % len(group)]
                for name in space.groups[g]:
                    row[space.index[name]] = space.index[source + name.removeprefix(g)]
        rows.append(row)
    return torch.as_tensor(np.stack(rows))


def _mean_one(w: np.ndarray) -> torch.Tensor:
    """Weights rescaled to mean 1 (all ones when they are all zero or there are none)."""
    w = torch.as_tensor(np.asarray(w, dtype=np.float32))
    return w / w.mean() if len(w) and float(w.mean()) > 0 else torch.ones_like(w)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(B, n) -> (B,)``: ``sum(w * v) / sum(w)`` per sample, the plain mean when every weight is 1."""
    return (values * weights).sum(1) / weights.sum(1).clamp_min(1e-6)


class Slot(NamedTuple):
    """Where one modulation slot lives: action slices/dims, and parameter-vector indices."""

    source: slice
    destination: slice
    amount: int
    source_param: int
    destination_param: int
    amount_param: int

    @classmethod
    def of(cls, space: ParameterSpace, slot: int) -> Slot:
        src, dst, amt = (space.layout[space.index[f"mod_{slot}_{k}"]] for k in ("source", "destination", "amount"))
        return cls(src.slice, dst.slice, amt.start, space.index[src.name], space.index[dst.name], space.index[amt.name])


class ParameterLoss:
    """``(z (B, action_dim), x (B, P)) -> {term: scalar tensor}``, with ``"total"`` the weighted sum."""

    def __init__(
        self,
        space: ParameterSpace,
        weights: LossWeights | None = None,
        parameter_weights: np.ndarray | None = None,
        ignore_switched_off: bool = False,
        rotations: list[list[str]] | None = None,
    ):
        self.space, self.weights = space, weights or LossWeights()
        self.rotations = rotation_indices(space, rotations or [])  # (R, P): the target's columns under each rotation
        self.switch = torch.as_tensor(module_switches(space) if ignore_switched_off else np.full(len(space.parameters), -1))
        if parameter_weights is None:
            parameter_weights = np.ones(len(space.parameters), dtype=np.float32)
        parameter_weights = np.asarray(parameter_weights, dtype=np.float32)
        if parameter_weights.shape != (len(space.parameters),) or not np.all(np.isfinite(parameter_weights)) or np.any(parameter_weights < 0):
            raise ValueError(f"parameter_weights must be {len(space.parameters)} finite values >= 0, got shape {parameter_weights.shape}")
        cont, tog = [], []
        self.categorical: list[tuple[int, int, int, int]] = []  # (start, stop, parameter, n)
        for i, (p, s) in enumerate(zip(space.parameters, space.layout)):
            if p.name.startswith("mod_"):
                continue
            if p.kind in (Kind.CONTINUOUS, Kind.INTEGER):
                cont.append((s.start, i))
            elif p.kind is Kind.TOGGLE:
                tog.append((s.start, i))
            else:
                self.categorical.append((s.start, s.stop, i, p.n_values))
        self.cont_dims, self.cont_params = _index_pairs(cont)
        self.tog_dims, self.tog_params = _index_pairs(tog)
        self.cont_weight = _mean_one(parameter_weights[self.cont_params.numpy()])
        self.tog_weight = _mean_one(parameter_weights[self.tog_params.numpy()])
        self.cat_params = [i for _, _, i, _ in self.categorical]
        self.cat_weight = _mean_one(parameter_weights[self.cat_params])
        self.slots = [Slot.of(space, slot) for slot in range(1, space.modulation.slots + 1)]
        self.group_of = np.array([p.group for p in space.parameters])
        self.gumbel_tau: float | None = None

    def set_gumbel_temperature(self, tau: float | None) -> None:
        """``None``: plain cross-entropy for categorical parameters; a positive ``tau``: Gumbel-softmax."""
        if tau is not None and tau <= 0:
            raise ValueError(f"Gumbel temperature must be > 0, got {tau}")
        self.gumbel_tau = tau

    def _categorical(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample loss ``(B,)``."""
        if self.gumbel_tau is None:
            return F.cross_entropy(logits, target, reduction="none")
        sample = F.gumbel_softmax(logits, tau=self.gumbel_tau, hard=False)
        return -torch.log(sample.gather(1, target[:, None]).clamp_min(1e-8))[:, 0]

    def audible(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, P)`` 1 where a parameter counts: its module is on in the target, or it has no switch."""
        gated = self.switch >= 0
        out = torch.ones_like(x)
        out[:, gated] = (x[:, self.switch[gated]] > 0.5).to(x.dtype)
        return out

    def class_index(self, x: torch.Tensor, param: int, n: int) -> torch.Tensor:
        return ParameterSpace.discrete_index(x[:, param], n)

    def __call__(self, z: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.mean() for k, v in self.per_sample(z, x).items()}

    @torch.no_grad()
    def align(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, P)`` with each sample's ``rotations`` turned to the one ``z`` fits best (lowest total of
        the parameter terms; the first on a tie, so the identity where nothing differs); ``x`` without rotations."""
        if len(self.rotations) < 2:
            return x
        columns = self.rotations.to(x.device)
        candidates = x[:, columns]  # (B, R, P)
        batch, r, p = candidates.shape
        totals = self._terms(z.repeat_interleave(r, 0), candidates.reshape(batch * r, p), modulation=False)["total"].reshape(batch, r)
        return candidates[torch.arange(batch, device=x.device), totals.argmin(1)]

    def per_sample(self, z: torch.Tensor, x: torch.Tensor, align: bool = True) -> dict[str, torch.Tensor]:
        """Every term for each sample, ``{term: (B,)}``; ``__call__`` is their batch mean. The targets are
        first aligned to ``z`` (:meth:`align`) unless ``align`` is False (``x`` already aligned)."""
        return self._terms(z, self.align(z, x) if align else x)

    def _terms(self, z: torch.Tensor, x: torch.Tensor, modulation: bool = True) -> dict[str, torch.Tensor]:
        w = self.weights
        terms: dict[str, torch.Tensor] = {}
        zero = z.new_zeros(z.shape[0])
        audible = self.audible(x)
        if len(self.cont_dims):
            sq = (torch.sigmoid(z[:, self.cont_dims]) - x[:, self.cont_params]) ** 2
            terms["continuous"] = _weighted_mean(sq, audible[:, self.cont_params] * self.cont_weight.to(z))
        else:
            terms["continuous"] = zero
        if len(self.tog_dims):
            bce = F.binary_cross_entropy_with_logits(z[:, self.tog_dims], x[:, self.tog_params], reduction="none")
            terms["toggle"] = _weighted_mean(bce, audible[:, self.tog_params] * self.tog_weight.to(z))
        else:
            terms["toggle"] = zero
        if self.categorical:
            ce = torch.stack([self._categorical(z[:, a:b], self.class_index(x, i, n)) for a, b, i, n in self.categorical], 1)
            terms["categorical"] = _weighted_mean(ce, audible[:, self.cat_params] * self.cat_weight.to(z))
        else:
            terms["categorical"] = zero
        terms["modulation"] = self._slot_loss(z, x) if self.slots and modulation else zero
        terms["total"] = (
            w.continuous * terms["continuous"] + w.toggle * terms["toggle"] + w.categorical * terms["categorical"] + w.modulation * terms["modulation"]
        )
        return terms

    def _slot_loss(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Hungarian-matched loss between predicted and target slots, per sample ``(B,)``."""
        from scipy.optimize import linear_sum_assignment

        src_logp = torch.stack([F.log_softmax(z[:, s.source], -1) for s in self.slots], 1)  # (B, S, n_src)
        dst_logp = torch.stack([F.log_softmax(z[:, s.destination], -1) for s in self.slots], 1)  # (B, S, n_dst)
        amt = torch.stack([torch.sigmoid(z[:, s.amount]) for s in self.slots], 1)  # (B, S)
        n_src, n_dst = src_logp.shape[-1], dst_logp.shape[-1]
        t_src = torch.stack([ParameterSpace.discrete_index(x[:, s.source_param], n_src) for s in self.slots], 1)  # (B, S)
        t_dst = torch.stack([torch.round(x[:, s.destination_param] * max(n_dst - 1, 1)).long() for s in self.slots], 1)
        t_amt = torch.stack([x[:, s.amount_param] for s in self.slots], 1)
        connected = (t_src > 0).float()  # source 0 is "no source"
        # cost[b, i, j]: predicted slot i against target slot j.
        cost = -torch.gather(src_logp, 2, t_src[:, None, :].expand(-1, len(self.slots), -1))
        dst_cost = -torch.gather(dst_logp, 2, t_dst[:, None, :].expand(-1, len(self.slots), -1))
        amt_cost = (amt[:, :, None] - t_amt[:, None, :]) ** 2
        cost = cost + connected[:, None, :] * (dst_cost + amt_cost)
        # The assignment per sample on the CPU, then one gather: indexing sample by sample cost one
        # small kernel per sample forward and backward, which set the pace of a training step on a GPU.
        assignment = np.stack([linear_sum_assignment(c)[1] for c in cost.detach().float().cpu().numpy()])  # (B, S)
        matched = torch.gather(cost, 2, torch.from_numpy(assignment).to(cost.device)[:, :, None]).squeeze(-1)  # (B, S)
        return matched.mean(1)

    @torch.no_grad()
    def metrics(self, z: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
        """Per-group mean absolute error of continuous parameters and accuracy of discrete ones."""
        out: dict[str, float] = {}
        if len(self.cont_dims):
            err = (torch.sigmoid(z[:, self.cont_dims]) - x[:, self.cont_params]).abs().mean(0).cpu().numpy()
            groups = self.group_of[self.cont_params.numpy()]
            for g in dict.fromkeys(groups):
                out[f"mae/{g}"] = float(err[groups == g].mean())
            out["mae/all"] = float(err.mean())
        if len(self.tog_dims):
            out["accuracy/toggle"] = float(((z[:, self.tog_dims] > 0).float() == x[:, self.tog_params]).float().mean())
        if self.categorical:
            acc = [float((z[:, a:b].argmax(-1) == self.class_index(x, i, n)).float().mean()) for a, b, i, n in self.categorical]
            out["accuracy/categorical"] = float(np.mean(acc))
        return out


class HypothesisLoss:
    """Relaxed winner-takes-all over K hypotheses, plus cross-entropy of the scores on the winner.

    ``(z (B, K, action_dim), scores (B, K), x (B, P)) -> {term: scalar}``. Per sample, the hypothesis with
    the lowest :class:`ParameterLoss` total wins; it gets weight ``1 - epsilon`` and the others share
    ``epsilon``, so none is left untrained (a hypothesis that never wins would never learn). The reported
    parameter terms (``continuous``, ...) are the winner's; ``hypotheses`` is the relaxed total and
    ``score`` the winner's cross-entropy, weighted by ``score_weight`` in ``total``. With K = 1 this is
    exactly :class:`ParameterLoss`.

    ``log_spread`` ``(B, K, action_dim)`` (a decoder with ``spread``) adds ``spread``: the Gaussian negative
    log-likelihood of each audible continuous target value about ``sigmoid(z)`` (held fixed) with that
    standard deviation, weighted across hypotheses as ``hypotheses`` is and by ``spread_weight`` in
    ``total``. So each hypothesis learns how far off its values are when it is the one that fits.
    """

    def __init__(self, loss: ParameterLoss, epsilon: float = 0.05, score_weight: float = 0.1, spread_weight: float = 1.0):
        if not 0.0 <= epsilon < 1.0 or score_weight < 0 or spread_weight < 0:
            raise ValueError(f"epsilon={epsilon} must be in [0, 1), score_weight={score_weight} and spread_weight={spread_weight} >= 0")
        self.loss, self.epsilon, self.score_weight, self.spread_weight = loss, epsilon, score_weight, spread_weight

    def winners(self, z: torch.Tensor, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Every term per sample and hypothesis ``{term: (B, K)}``, and the winner of each sample ``(B,)``."""
        per, winner, _ = self._winners(z, x)
        return per, winner

    def _winners(self, z: torch.Tensor, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """:meth:`winners` and the targets aligned to each hypothesis ``(B, K, P)`` (``ParameterLoss.align``)."""
        batch, k, dim = z.shape
        flat = z.reshape(batch * k, dim)
        aligned = self.loss.align(flat, x.repeat_interleave(k, 0))
        per = self.loss.per_sample(flat, aligned, align=False)
        per = {name: v.reshape(batch, k) for name, v in per.items()}
        return per, per["total"].detach().argmin(1), aligned.reshape(batch, k, -1)

    def spread_nll(self, z: torch.Tensor, log_spread: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(B, K)``: mean Gaussian NLL (constant dropped) of the audible continuous values, means held fixed.
        ``x``: the targets ``(B, P)``, or ``(B, K, P)`` aligned to each hypothesis."""
        dims, params = self.loss.cont_dims, self.loss.cont_params
        x = x if x.dim() == 3 else x[:, None].expand(-1, z.shape[1], -1)
        error = torch.sigmoid(z[..., dims]).detach() - x[..., params]
        log_s = log_spread[..., dims]
        nll = 0.5 * error**2 * torch.exp(-2.0 * log_s) + log_s
        audible = self.loss.audible(x.reshape(-1, x.shape[-1])).reshape(x.shape)[..., params]
        return (nll * audible).sum(-1) / audible.sum(-1).clamp_min(1.0)

    def __call__(self, z: torch.Tensor, scores: torch.Tensor, x: torch.Tensor, log_spread: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        per, winner, aligned = self._winners(z, x)
        k = z.shape[1]
        rows = torch.arange(z.shape[0], device=z.device)
        terms = {name: v[rows, winner].mean() for name, v in per.items() if name != "total"}
        weight = torch.full_like(per["total"], self.epsilon / (k - 1) if k > 1 else 0.0)
        weight[rows, winner] = 1.0 - self.epsilon if k > 1 else 1.0
        if k > 1:
            terms["hypotheses"] = (weight * per["total"]).sum(1).mean()
            terms["score"] = F.cross_entropy(scores, winner)
            terms["total"] = terms["hypotheses"] + self.score_weight * terms["score"]
        else:
            terms["total"] = per["total"][:, 0].mean()
        if log_spread is not None and len(self.loss.cont_dims):
            terms["spread"] = (weight.detach() * self.spread_nll(z, log_spread, aligned)).sum(1).mean()
            terms["total"] = terms["total"] + self.spread_weight * terms["spread"]
        return terms
