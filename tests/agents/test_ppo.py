import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents.dataset.shards import as_stored
from agents.ppo import SoundMatcherPolicy
from agents.supervised.checkpoint import load_model
from agents.supervised.model import SoundMatcher
from tests.agents.conftest import TINY_MODEL, with_hypotheses
from tests.agents.test_dataset import tiny_config
from tests.conftest import TINY_SPACE
from vital_gym.envs import VitalMatchEnv


@pytest.fixture
def tiny_env(tiny_space):
    """One-shot env over the tiny space with the tiny dataset's render and log-mel settings."""
    config = tiny_config()
    return VitalMatchEnv(space=tiny_space, render=config.render, observation=config.observation)


DISTRIBUTIONS = ["layout", "hypotheses", "gaussian"]


def mode(policy: SoundMatcherPolicy, obs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return policy.get_distribution(obs).mode()


def decoded(space, actions: torch.Tensor) -> np.ndarray:
    return np.stack([space.action_to_vector(a) for a in np.clip(actions.numpy(), -1, 1)])


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_policy_acts_as_the_supervised_network_at_the_env_note(tiny_env, tiny_space, tiny_checkpoint, distribution):
    policy_kwargs = {"checkpoint": str(tiny_checkpoint), "midi_note": 48, "action_distribution": distribution}
    model = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs=policy_kwargs, n_steps=4, batch_size=4, device="cpu")
    supervised, _, _ = load_model(tiny_checkpoint)
    with torch.no_grad():  # a note map that matters, in both networks
        weight = torch.randn_like(supervised.decoder.note_proj.weight)
        supervised.decoder.note_proj.weight.copy_(weight)
        model.policy.mlp_extractor.decoder.note_proj.weight.copy_(weight)
    obs = torch.stack([torch.from_numpy(tiny_env.reset(seed=s)[0]) for s in range(3)])
    with torch.no_grad():
        expected = SoundMatcher.actions(supervised(as_stored(obs), torch.full((3,), 48.0)))  # read as the data stores it
        assert not torch.allclose(expected, SoundMatcher.actions(supervised(as_stored(obs), torch.full((3,), 60.0))), atol=1e-3)
        dist = model.policy.get_distribution(obs)
    # The deterministic action decodes into exactly the supervised prediction.
    assert np.array_equal(decoded(tiny_space, mode(model.policy, obs)), decoded(tiny_space, expected))
    if distribution == "gaussian":
        assert torch.allclose(dist.distribution.mean, expected, atol=1e-6)
        assert torch.allclose(dist.distribution.stddev, torch.full_like(expected, np.exp(-2.0)))
    elif distribution == "layout":  # no spread heads in this network: continuous values start at exp(log_std_init)
        continuous = dist.continuous_dims
        assert torch.allclose(dist.mean, expected[:, continuous], atol=1e-6)
        assert torch.allclose(dist.std, torch.full_like(dist.std, np.exp(-2.0)))
    # Acting reuses SB3's one distribution object (``dist``), so it comes after reading it.
    action, _ = model.predict(obs[0].numpy(), deterministic=True)
    assert np.allclose(tiny_space.action_to_vector(action), decoded(tiny_space, expected)[0], atol=1e-6)  # a batch of one


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_a_few_ppo_updates_run_on_cpu_and_change_the_actor(tiny_env, tiny_checkpoint, distribution):
    model = PPO(
        SoundMatcherPolicy,
        tiny_env,
        policy_kwargs={"checkpoint": str(tiny_checkpoint), "action_distribution": distribution},
        n_steps=8,
        batch_size=4,
        n_epochs=2,
        learning_rate=1e-3,
        seed=0,
        device="cpu",
    )
    before = {k: v.clone() for k, v in model.policy.mlp_extractor.decoder.state_dict().items()}
    model.learn(total_timesteps=16)
    after = model.policy.mlp_extractor.decoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert np.isfinite(model.logger.name_to_value.get("train/value_loss", 0.0))
    assert np.isfinite(model.logger.name_to_value["train/entropy_loss"])


def test_an_unknown_action_distribution_is_named(tiny_env, tiny_checkpoint):
    with pytest.raises(ValueError, match="action_distribution='beta'"):
        PPO(SoundMatcherPolicy, tiny_env, policy_kwargs={"checkpoint": str(tiny_checkpoint), "action_distribution": "beta"}, n_steps=4, batch_size=4)


def test_scratch_policy_has_the_same_architecture_and_a_wrong_space_is_refused(tiny_env, tiny_checkpoint, tmp_path):
    scratch = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs={"model": TINY_MODEL, "space": TINY_SPACE}, n_steps=4, batch_size=4, device="cpu")
    warm = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs={"checkpoint": str(tiny_checkpoint)}, n_steps=4, batch_size=4, device="cpu")
    assert [tuple(p.shape) for p in scratch.policy.parameters()] == [tuple(p.shape) for p in warm.policy.parameters()]
    core_env = VitalMatchEnv(space="core", render=tiny_config().render, observation=tiny_config().observation)
    with pytest.raises(ValueError, match="action dimensions"):
        PPO(SoundMatcherPolicy, core_env, policy_kwargs={"checkpoint": str(tiny_checkpoint)}, n_steps=4, batch_size=4, device="cpu")


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_sb3_policy_save_and_load_rebuild_the_same_actor(tiny_env, tiny_checkpoint, tmp_path, distribution):
    policy_kwargs = {"checkpoint": str(tiny_checkpoint), "action_distribution": distribution}
    model = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs=policy_kwargs, n_steps=4, batch_size=4, device="cpu")
    with torch.no_grad():
        model.policy.log_std.fill_(-3.0)  # a trained value, to see the state (not just the source) come back
    model.policy.save(tmp_path / "policy.pt")
    loaded = SoundMatcherPolicy.load(str(tmp_path / "policy.pt"), device="cpu")
    assert loaded.action_distribution == distribution
    obs = torch.from_numpy(tiny_env.reset(seed=1)[0])[None]
    assert torch.equal(mode(loaded, obs), mode(model.policy, obs))
    actions = model.policy.get_distribution(obs).sample()
    with torch.no_grad():
        assert torch.allclose(loaded.get_distribution(obs).log_prob(actions), model.policy.get_distribution(obs).log_prob(actions))
    assert torch.equal(loaded.log_std, model.policy.log_std)


def test_ppo_starts_from_the_best_scored_hypothesis_and_its_spread(tiny_env, tiny_space, tmp_path):
    from agents.supervised.checkpoint import save_checkpoint

    torch.manual_seed(0)
    config = with_hypotheses(TINY_MODEL, 3)
    config.decoder.spread = True
    network = SoundMatcher(tiny_space, config)
    with torch.no_grad():  # spreads that differ by hypothesis and by sound
        for head in network.decoder.spread_heads:
            head.weight.normal_(0.0, 0.5)
    folder = save_checkpoint(tmp_path / "k3", network, TINY_SPACE)
    kwargs = {"checkpoint": str(folder), "midi_note": 60, "action_distribution": "layout"}
    model = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs=kwargs, n_steps=4, batch_size=4, device="cpu")
    supervised, _, _ = load_model(folder)
    obs = torch.stack([torch.from_numpy(tiny_env.reset(seed=s)[0]) for s in range(3)])
    with torch.no_grad():
        z, scores, log_spread = supervised.predictive(as_stored(obs), torch.full((3,), 60.0))
        best = torch.arange(3), scores.argmax(1)
        dist = model.policy.get_distribution(obs)
    continuous = dist.continuous_dims
    assert torch.allclose(dist.mean, SoundMatcher.actions(z[best])[:, continuous], atol=1e-6)
    # A spread is the standard deviation of a value in [0, 1]; in action units it is twice that.
    assert torch.allclose(dist.std, 2 * log_spread[best][:, continuous].exp(), atol=1e-6)
    assert np.array_equal(decoded(tiny_space, dist.mode()), decoded(tiny_space, SoundMatcher.actions(z[best])))


def test_the_hypotheses_mixture_learns_which_hypothesis_to_act_with(tiny_env, tiny_space, tmp_path):
    from agents.supervised.checkpoint import save_checkpoint

    torch.manual_seed(0)
    folder = save_checkpoint(tmp_path / "k3", SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 3)), TINY_SPACE)
    moved = {}
    for distribution in ("layout", "hypotheses"):
        kwargs = {"checkpoint": str(folder), "midi_note": 60, "action_distribution": distribution}
        model = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs=kwargs, n_steps=8, batch_size=4, n_epochs=2, learning_rate=1e-3, seed=0, device="cpu")
        obs = torch.stack([torch.from_numpy(tiny_env.reset(seed=s)[0]) for s in range(3)])
        supervised, _, _ = load_model(folder)
        with torch.no_grad():
            z, scores, _ = supervised.predictive(as_stored(obs), torch.full((3,), 60.0))
        assert np.array_equal(decoded(tiny_space, mode(model.policy, obs)), decoded(tiny_space, SoundMatcher.actions(z[torch.arange(3), scores.argmax(1)])))
        head = model.policy.mlp_extractor.decoder.score_head.weight.detach().clone()
        model.learn(total_timesteps=16)
        moved[distribution] = not torch.equal(head, model.policy.mlp_extractor.decoder.score_head.weight)
    assert moved == {"layout": False, "hypotheses": True}  # only the mixture's gradient reaches the scores
