"""Episode starts from a trained matcher: its choice by rendering or its own best-scored hypothesis, and
a one-shot reward measured against the latter."""

import pickle

import numpy as np
import pytest
from stable_baselines3 import PPO

from agents.match import Matcher
from agents.ppo import SoundMatcherPolicy
from agents.ppo.start import MatcherStart
from tests.agents.test_dataset import tiny_config
from vital_gym.envs import VitalMatchEnv


def env_with(space, start: MatcherStart, **kwargs) -> VitalMatchEnv:
    config = tiny_config()
    return VitalMatchEnv(space=space, render={**config.render, "midi_note": start.midi_note}, observation=config.observation, start=start, **kwargs)


@pytest.mark.parametrize("choice", ["closest", "top"])
def test_the_start_is_the_matchers_choice_and_survives_pickling(tiny_checkpoint, tiny_space, choice):
    env = env_with(tiny_space, MatcherStart(str(tiny_checkpoint), 60, 0.7, choice=choice), mode="refine", refine_action="delta")
    env.reset(seed=0)
    start = pickle.loads(pickle.dumps(env.start))  # as a SubprocVecEnv worker receives it
    assert start._matcher is None
    matcher = Matcher(tiny_checkpoint, render_workers=1, neighbours=False)
    expected = matcher.closest(env.target.audio, 60, 0.7, draws=0)[0] if choice == "closest" else matcher.predict(env.target.audio, 60)
    assert np.array_equal(start(env.target), expected) and np.array_equal(env.start(env.target), expected)


def test_an_unknown_choice_is_named():
    with pytest.raises(ValueError, match="choice='best'"):
        MatcherStart("agents/models/core_cpu", choice="best")


def test_the_warm_started_policy_earns_nothing_against_its_own_top_choice(tiny_checkpoint, tiny_space):
    env = env_with(tiny_space, MatcherStart(str(tiny_checkpoint), 60, 0.7, choice="top"))
    model = PPO(SoundMatcherPolicy, env, policy_kwargs={"checkpoint": str(tiny_checkpoint), "midi_note": 60}, n_steps=4, batch_size=4, device="cpu", seed=0)
    drawn = []
    for seed in range(3):
        obs, start = env.reset(seed=seed)
        action, _ = model.predict(obs, deterministic=True)
        _, reward, *_ = env.step(action)
        assert reward == pytest.approx(0.0, abs=1e-5)  # the mean action is the start: only exploration is rewarded
        env.reset(seed=seed)
        _, reward, *_ = env.step(model.predict(obs, deterministic=False)[0])
        drawn.append(reward)
    assert any(abs(r) > 1e-4 for r in drawn)
