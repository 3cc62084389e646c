import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

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


def test_policy_mean_is_the_supervised_action_at_the_env_note(tiny_env, tiny_checkpoint):
    policy_kwargs = {"checkpoint": str(tiny_checkpoint), "midi_note": 48}
    model = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs=policy_kwargs, n_steps=4, batch_size=4, device="cpu")
    supervised, _, _ = load_model(tiny_checkpoint)
    with torch.no_grad():  # a note map that matters, in both networks
        weight = torch.randn_like(supervised.decoder.note_proj.weight)
        supervised.decoder.note_proj.weight.copy_(weight)
        model.policy.mlp_extractor.decoder.note_proj.weight.copy_(weight)
    obs = torch.stack([torch.from_numpy(tiny_env.reset(seed=s)[0]) for s in range(3)])
    with torch.no_grad():
        mean = model.policy.get_distribution(obs).distribution.mean
        expected = SoundMatcher.actions(supervised(obs, torch.full((3,), 48.0)))
        assert not torch.allclose(mean, SoundMatcher.actions(supervised(obs, torch.full((3,), 60.0))), atol=1e-3)
    assert torch.allclose(mean, expected, atol=1e-6)
    std = model.policy.get_distribution(obs).distribution.stddev
    assert torch.allclose(std, torch.full_like(std, np.exp(-2.0)))
    # The deterministic action is what the env decodes into the supervised prediction.
    action, _ = model.predict(obs[0].numpy(), deterministic=True)
    assert np.allclose(action, np.clip(expected[0].numpy(), -1, 1), atol=1e-6)


def test_a_few_ppo_updates_run_on_cpu_and_change_the_actor(tiny_env, tiny_checkpoint):
    model = PPO(
        SoundMatcherPolicy,
        tiny_env,
        policy_kwargs={"checkpoint": str(tiny_checkpoint)},
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


def test_scratch_policy_has_the_same_architecture_and_a_wrong_space_is_refused(tiny_env, tiny_checkpoint, tmp_path):
    scratch = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs={"model": TINY_MODEL, "space": TINY_SPACE}, n_steps=4, batch_size=4, device="cpu")
    warm = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs={"checkpoint": str(tiny_checkpoint)}, n_steps=4, batch_size=4, device="cpu")
    assert [tuple(p.shape) for p in scratch.policy.parameters()] == [tuple(p.shape) for p in warm.policy.parameters()]
    core_env = VitalMatchEnv(space="core", render=tiny_config().render, observation=tiny_config().observation)
    with pytest.raises(ValueError, match="action dimensions"):
        PPO(SoundMatcherPolicy, core_env, policy_kwargs={"checkpoint": str(tiny_checkpoint)}, n_steps=4, batch_size=4, device="cpu")


def test_sb3_policy_save_and_load_rebuild_the_same_actor(tiny_env, tiny_checkpoint, tmp_path):
    model = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs={"checkpoint": str(tiny_checkpoint)}, n_steps=4, batch_size=4, device="cpu")
    with torch.no_grad():
        model.policy.log_std.fill_(-3.0)  # a trained value, to see the state (not just the source) come back
    model.policy.save(tmp_path / "policy.pt")
    loaded = SoundMatcherPolicy.load(str(tmp_path / "policy.pt"), device="cpu")
    obs = torch.from_numpy(tiny_env.reset(seed=1)[0])[None]
    with torch.no_grad():
        expected = model.policy.get_distribution(obs).distribution.mean
        assert torch.allclose(loaded.get_distribution(obs).distribution.mean, expected)
    assert torch.equal(loaded.log_std, model.policy.log_std)


def test_ppo_starts_from_the_best_scored_hypothesis_of_a_several_hypothesis_model(tiny_env, tiny_space, tmp_path):
    from agents.supervised.checkpoint import save_checkpoint

    torch.manual_seed(0)
    folder = save_checkpoint(tmp_path / "k3", SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 3)), TINY_SPACE)
    model = PPO(SoundMatcherPolicy, tiny_env, policy_kwargs={"checkpoint": str(folder), "midi_note": 60}, n_steps=4, batch_size=4, device="cpu")
    supervised, _, _ = load_model(folder)
    obs = torch.stack([torch.from_numpy(tiny_env.reset(seed=s)[0]) for s in range(3)])
    with torch.no_grad():
        z, scores = supervised.hypotheses(obs, torch.full((3,), 60.0))
        expected = SoundMatcher.actions(z[torch.arange(3), scores.argmax(1)])
        assert torch.allclose(model.policy.get_distribution(obs).distribution.mean, expected, atol=1e-6)
