import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Normal

from agents.ppo.distributions import HypothesesDistribution, LayoutDistribution
from agents.supervised.model import SoundMatcher
from vital_gym.params import Kind


@pytest.fixture
def raw(tiny_space) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(5, tiny_space.action_dim) * 2


def reference(space, raw: torch.Tensor, log_std: torch.Tensor) -> list[tuple[slice, torch.distributions.Distribution]]:
    """Each block of the layout as a torch distribution, one at a time."""
    blocks = []
    for s in space.layout:
        z = raw[:, s.slice]
        if s.kind is Kind.CATEGORICAL:
            blocks.append((s, Categorical(logits=z)))
        elif s.kind is Kind.TOGGLE:
            blocks.append((s, Bernoulli(logits=z[:, 0])))
        else:
            blocks.append((s, Normal(torch.tanh(z[:, 0] / 2), log_std[:, s.start].exp())))
    return blocks


def test_log_prob_and_entropy_are_the_sums_over_the_layouts_blocks(tiny_space, raw):
    log_std = torch.randn_like(raw) * 0.3 - 2
    dist = LayoutDistribution(tiny_space).proba_distribution(raw, log_std)
    actions = dist.sample()
    expected_lp, expected_h = torch.zeros(5), torch.zeros(5)
    for s, block in reference(tiny_space, raw, log_std):
        a = actions[:, s.slice]
        value = a.argmax(1) if s.kind is Kind.CATEGORICAL else (a[:, 0] > 0).float() if s.kind is Kind.TOGGLE else a[:, 0]
        expected_lp += block.log_prob(value)
        expected_h += block.entropy()
    assert torch.allclose(dist.log_prob(actions), expected_lp, atol=1e-4)
    assert torch.allclose(dist.entropy(), expected_h, atol=1e-4)


def test_samples_carry_each_choice_as_a_one_hot_in_plus_minus_one(tiny_space, raw):
    dist = LayoutDistribution(tiny_space).proba_distribution(raw, torch.full_like(raw, -2.0))
    torch.manual_seed(1)
    actions = dist.sample()
    for s in tiny_space.layout:
        block = actions[:, s.slice]
        if s.kind is Kind.CATEGORICAL:
            assert torch.all((block == 1).sum(1) == 1) and torch.all((block == 1) | (block == -1))
        elif s.kind is Kind.TOGGLE:
            assert torch.all(block.abs() == 1)


def test_choices_are_drawn_with_the_networks_probabilities(tiny_space):
    raw = torch.zeros(1, tiny_space.action_dim)
    model = next(s for s in tiny_space.layout if s.kind is Kind.CATEGORICAL)
    switch = next(s for s in tiny_space.layout if s.kind is Kind.TOGGLE)
    raw[0, model.slice] = torch.linspace(-1, 2, model.stop - model.start)
    raw[0, switch.start] = 1.0
    dist = LayoutDistribution(tiny_space).proba_distribution(raw.expand(20000, -1), torch.full_like(raw, -2.0))
    torch.manual_seed(2)
    actions = dist.sample()
    counts = torch.bincount(actions[:, model.slice].argmax(1), minlength=model.stop - model.start) / 20000
    assert torch.allclose(counts, torch.softmax(raw[0, model.slice], 0), atol=0.015)
    assert abs((actions[:, switch.start] > 0).float().mean() - torch.sigmoid(torch.tensor(1.0))) < 0.015
    continuous = dist.continuous_dims
    assert torch.allclose(actions[:, continuous].std(0), torch.full((len(continuous),), np.exp(-2.0)), rtol=0.03)


def test_the_mode_and_the_mean_decode_to_the_networks_prediction(tiny_space, raw):
    dist = LayoutDistribution(tiny_space).proba_distribution(raw, torch.zeros(tiny_space.action_dim))
    expected = SoundMatcher.actions(raw)
    for action in (dist.mode(), dist.distribution.mean):
        for a, e in zip(action.numpy(), expected.numpy()):
            assert np.array_equal(tiny_space.action_to_vector(a), tiny_space.action_to_vector(e))
    torch.manual_seed(3)  # the mean is the expected action
    draws = torch.stack([dist.sample() for _ in range(4000)]).mean(0)
    assert torch.allclose(draws, dist.distribution.mean, atol=0.08)


def test_log_prob_reaches_logits_and_scales(tiny_space, raw):
    raw = raw.clone().requires_grad_()
    log_std = torch.full((tiny_space.action_dim,), -1.0, requires_grad=True)
    dist = LayoutDistribution(tiny_space).proba_distribution(raw, log_std)
    with torch.no_grad():
        actions = dist.sample()
    (dist.log_prob(actions).sum() + dist.entropy().sum()).backward()
    assert torch.all(raw.grad.abs().sum(0) > 0)  # every dimension: categorical, on/off and continuous
    assert torch.all(log_std.grad[dist.continuous_dims] != 0)


def test_raw_outputs_of_another_width_are_refused(tiny_space):
    with pytest.raises(ValueError, match="width 3"):
        LayoutDistribution(tiny_space).proba_distribution(torch.zeros(2, 3), torch.zeros(3))


def test_kl_divergence_is_zero_to_itself_and_the_sum_over_blocks(tiny_space, raw):
    from torch.distributions import kl_divergence

    log_std = torch.full_like(raw, -2.0)
    p = LayoutDistribution(tiny_space).proba_distribution(raw, log_std).distribution
    other = raw + torch.randn_like(raw)
    q = LayoutDistribution(tiny_space).proba_distribution(other, log_std - 0.5).distribution
    assert torch.allclose(kl_divergence(p, p), torch.zeros(5), atol=1e-6)
    expected = sum(kl_divergence(a, b) for (_, a), (_, b) in zip(reference(tiny_space, raw, log_std), reference(tiny_space, other, log_std - 0.5)))
    assert torch.allclose(kl_divergence(p, q), expected, atol=1e-4)


@pytest.fixture
def mixture_inputs(tiny_space) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw outputs ``(5, 3, D)``, log standard deviations and scores ``(5, 3)`` of three hypotheses."""
    torch.manual_seed(2)
    raw = torch.randn(5, 3, tiny_space.action_dim) * 2
    return raw, torch.randn_like(raw) * 0.3 - 2, torch.randn(5, 3)


def test_the_mixture_weighs_each_hypothesis_layout_by_its_score(tiny_space, mixture_inputs):
    raw, log_std, scores = mixture_inputs
    dist = HypothesesDistribution(tiny_space).proba_distribution(raw, log_std, scores)
    actions = dist.sample()
    per_hypothesis = torch.stack([LayoutDistribution(tiny_space).proba_distribution(raw[:, k], log_std[:, k]).log_prob(actions) for k in range(3)], 1)
    expected = torch.logsumexp(torch.log_softmax(scores, 1) + per_hypothesis, 1)
    assert torch.allclose(dist.log_prob(actions), expected, atol=1e-4) and dist.entropy() is None
    best = scores.argmax(1)
    modes = torch.stack([LayoutDistribution(tiny_space).proba_distribution(raw[:, k], log_std[:, k]).mode() for k in range(3)], 1)
    assert torch.equal(dist.mode(), modes[torch.arange(5), best])  # the best-scored hypothesis' prediction


def test_the_mixture_picks_hypotheses_with_the_scores_probabilities(tiny_space):
    model = next(s for s in tiny_space.layout if s.kind is Kind.CATEGORICAL)
    raw = torch.zeros(4000, 2, tiny_space.action_dim)
    raw[:, 0, model.slice] = torch.tensor([30.0] + [0.0] * (model.stop - model.start - 1))  # hypothesis 0: option 0, surely
    raw[:, 1, model.slice] = torch.tensor([0.0, 30.0] + [0.0] * (model.stop - model.start - 2))  # hypothesis 1: option 1
    scores = torch.log(torch.tensor([[0.25, 0.75]])).expand(4000, 2)
    torch.manual_seed(3)
    actions = HypothesesDistribution(tiny_space).proba_distribution(raw, torch.full_like(raw, -2.0), scores).sample()
    picked_second = (actions[:, model.slice].argmax(1) == 1).float().mean()
    assert abs(picked_second.item() - 0.75) < 0.03


def test_the_mixture_log_prob_reaches_the_scores(tiny_space, mixture_inputs):
    raw, log_std, scores = mixture_inputs
    scores = scores.clone().requires_grad_(True)
    dist = HypothesesDistribution(tiny_space).proba_distribution(raw, log_std, scores)
    dist.log_prob(dist.sample()).sum().backward()
    assert scores.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="expected \\(B, K, action_dim\\) and \\(B, K\\)"):
        HypothesesDistribution(tiny_space).proba_distribution(raw, log_std, scores[:, :2])
