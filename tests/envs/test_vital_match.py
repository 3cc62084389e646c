import gymnasium as gym
import numpy as np
import pytest
import soundfile as sf

import vital_gym  # noqa: F401  (registers VitalMatch-v0)
from vital_gym.envs import VitalMatchEnv, load_env_config
from vital_gym.rewards import ClapUnavailable

FAST = {"note_seconds": 0.2, "render_seconds": 0.4}


@pytest.fixture
def make_env(tiny_space):
    def make(**kwargs):
        kwargs.setdefault("space", tiny_space)
        kwargs.setdefault("render", FAST)
        return VitalMatchEnv(**kwargs)

    return make


@pytest.mark.parametrize("mode", ["one_shot", "refine"])
@pytest.mark.parametrize("observation, shape", [(None, (1, 128, 35)), ({"frontend": "audiomae"}, (1, 128, 38))])
def test_checkers_pass(make_env, mode, observation, shape):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make_env(mode=mode, observation=observation)
    check_env(env, skip_render_check=True)
    sb3_check_env(env)
    target = env.observation_space if mode == "one_shot" else env.observation_space["target"]
    assert target.shape == shape  # 0.4 s: 1 + 17640 // 512 frames, or 1 + (6400 - 400) // 160 of AudioMAE's


def test_registered_both_ways():
    for env_id in ("VitalMatch-v0", "vital_gym:VitalMatch-v0"):
        env = gym.make(env_id, space="core", render=FAST)
        assert env.action_space.shape == (env.unwrapped.space.action_dim,)
        env.close()


def test_reset_with_seed_is_reproducible(make_env):
    env = make_env()
    obs_a, info_a = env.reset(seed=11)
    obs_b, info_b = env.reset(seed=11)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(info_a["target_params"], info_b["target_params"])
    obs_c, _ = env.reset(seed=12)
    assert not np.array_equal(obs_a, obs_c)
    assert obs_a.shape == env.observation_space.shape and obs_a.dtype == np.float32


def test_one_shot_step(make_env, tmp_path):
    import vita

    env = make_env(return_audio=True)
    _, info0 = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert terminated and not truncated
    assert reward == pytest.approx(info["score"]) == pytest.approx(-info["spectral_distance"])
    assert {"params", "preset", "render_status", "clipped", "silent", "audio"} <= set(info)
    # the preset in info is the one rendered: saved and loaded in Vita it sounds the same
    path = info["preset"].save(tmp_path / "step.vital")
    synth = vita.Synth()
    assert synth.load_preset(str(path))
    cfg = env.render_config
    reference = synth.render(cfg.midi_note, cfg.velocity, cfg.note_seconds, cfg.render_seconds).mean(axis=0)
    if info["preset"].settings["sample_on"] == 0:  # vita's sampler is random (see render.py)
        assert np.max(np.abs(info["audio"][0] - reference)) < 1e-5


def test_perfect_action_scores_zero_distance(make_env):
    env = make_env()
    _, info = env.reset(seed=5)
    action = env.space.vector_to_action(info["target_params"])
    _, reward, *_ = env.step(action)
    assert reward == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "action, error",
    [(np.zeros(5, dtype=np.float32), "shape"), (None, "NaN")],
)
def test_bad_actions_raise(make_env, action, error):
    env = make_env()
    env.reset(seed=0)
    if action is None:
        action = np.full(env.action_space.shape, np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match=error):
        env.step(action)


def test_out_of_range_actions_are_clipped(make_env):
    env = make_env()
    env.reset(seed=0)
    _, reward, *_ = env.step(np.full(env.action_space.shape, 7.0, dtype=np.float32))
    assert np.isfinite(reward)


def test_refine_reward_is_improvement(make_env):
    env = make_env(mode="refine", max_steps=3, refine_action="delta", success_distance=0.0)
    obs, info = env.reset(seed=2)
    assert set(obs) == {"target", "current", "params"}
    start, total, rng = info["score"], 0.0, np.random.default_rng(0)
    for step in range(3):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        total += reward
        assert not terminated and truncated == (step == 2)
    assert total == pytest.approx(info["score"] - start, abs=1e-5)


def test_refine_terminates_under_the_threshold(make_env):
    env = make_env(mode="refine", success_distance=1e9)
    env.reset(seed=0)
    *_, terminated, truncated, _ = env.step(env.action_space.sample())
    assert terminated and not truncated


def test_delta_actions_change_parameters_gradually(make_env):
    env = make_env(mode="refine", refine_action="delta", delta_scale=0.1)
    obs, _ = env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    obs2, *_ = env.step(zero)  # no change
    np.testing.assert_allclose(obs2["params"], obs["params"], atol=1e-6)
    up = zero.copy()
    cutoff = next(s for s in env.space.layout if s.name == "filter_1_cutoff")
    up[cutoff.start] = 1.0
    obs3, *_ = env.step(up)
    i = env.space.index["filter_1_cutoff"]
    assert obs3["params"][i] == pytest.approx(min(obs["params"][i] + 0.1, 1.0), abs=1e-6)


def test_rgb_array_render(make_env):
    env = make_env(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.shape[0] == 128


def test_audio_folder_targets_without_params(make_env, tmp_path):
    t = np.arange(44100) / 44100
    sf.write(str(tmp_path / "hum.wav"), (0.3 * np.sin(2 * np.pi * 196 * t)).astype(np.float32), 44100)
    env = make_env(targets=f"audio:{tmp_path}")
    _, info = env.reset(seed=0)
    assert info["target"] == "hum" and "target_params" not in info
    _, reward, *_ = env.step(env.action_space.sample())
    assert np.isfinite(reward)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"mode": "twice"}, "mode"),
        ({"refine_action": "jump"}, "refine_action"),
        ({"max_steps": 0}, "max_steps"),
        ({"render_mode": "human"}, "render_mode"),
        ({"targets": "audio:/nonexistent/folder"}, "does not exist"),
        ({"render": {"sample_rate": 10}}, "sample_rate"),
        ({"observation": {"n_mel": 64}}, "unknown observation settings"),
        ({"observation": {"frontend": "audiomae"}, "render": {"note_seconds": 0.01, "render_seconds": 0.02}}, "at least one 25 ms frame"),
    ],
)
def test_bad_arguments(make_env, kwargs, error):
    with pytest.raises((ValueError, FileNotFoundError), match=error):
        make_env(**kwargs)


def test_clap_weight_without_checkpoint_fails_at_make(monkeypatch):
    monkeypatch.delenv("VITAL_GYM_CLAP_CHECKPOINT", raising=False)
    with pytest.raises(ClapUnavailable, match="clap_weight"):
        gym.make("VitalMatch-v0", reward={"clap_weight": 0.3})


@pytest.mark.slow
def test_clap_reward_in_info(make_env, random_clap):
    env = make_env(reward={"clap_weight": 0.5, "clap_checkpoint": "random"}, clap=random_clap)
    env.reset(seed=0)
    *_, info = env.step(env.action_space.sample())
    assert -1 <= info["clap_similarity"] <= 1
    assert info["score"] == pytest.approx(0.5 * info["clap_similarity"] - info["spectral_distance"])


@pytest.mark.parametrize("config", ["one_shot", "refine"])
def test_shipped_env_configs(config):
    kwargs = load_env_config(config)
    kwargs["render"] = {**kwargs.get("render", {}), **FAST}
    env = gym.make("VitalMatch-v0", **kwargs)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()


def test_async_vector_env(tiny_space):
    envs = gym.vector.AsyncVectorEnv(
        [lambda: VitalMatchEnv(space=tiny_space, render=FAST) for _ in range(2)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        context="forkserver",  # fork after torch has run threads can deadlock the children
    )
    try:
        obs, _ = envs.reset(seed=[1, 2])
        assert obs.shape[0] == 2
        for _ in range(2):
            obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
            assert rewards.shape == (2,) and terminated.all()
    finally:
        envs.close()


def test_sb3_subproc_vec_env(tiny_space):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    envs = SubprocVecEnv([lambda: VitalMatchEnv(space=tiny_space, render=FAST) for _ in range(2)], start_method="forkserver")
    try:
        envs.seed(3)
        obs = envs.reset()
        assert obs.shape == (2, *envs.observation_space.shape)
        obs, rewards, dones, infos = envs.step(np.stack([envs.action_space.sample() for _ in range(2)]))
        assert rewards.shape == (2,) and dones.all() and "spectral_distance" in infos[0]
    finally:
        envs.close()


def test_a_refine_episode_starts_where_start_says(make_env, tiny_space):
    from gymnasium.utils.env_checker import check_env

    chosen = tiny_space.sample(np.random.default_rng(3))
    seen = []

    def start(target):
        seen.append(target.name)
        return chosen

    env = make_env(mode="refine", refine_action="delta", start=start)
    check_env(env, skip_render_check=True)
    _, info = env.reset(seed=0)
    assert np.array_equal(info["params"], env.codec.canonical(chosen)) and seen[-1] == env.target.name
    plain = make_env(mode="refine")
    assert np.array_equal(plain.reset(seed=0)[1]["params"], plain.codec.from_preset(plain.codec.base))
    with pytest.raises(ValueError, match="the start's parameter vector has shape"):
        make_env(mode="refine", start=lambda target: chosen[:-1]).reset(seed=0)


def test_a_one_shot_start_makes_the_reward_the_improvement_over_it(make_env, tiny_space):
    from gymnasium.utils.env_checker import check_env

    chosen = tiny_space.sample(np.random.default_rng(3))
    env, plain = make_env(start=lambda target: chosen), make_env()
    check_env(env, skip_render_check=True)
    _, info = env.reset(seed=0)
    plain.reset(seed=0)
    assert np.array_equal(info["params"], env.codec.canonical(chosen)) and "spectral_distance" in info
    action = np.random.default_rng(1).uniform(-1, 1, env.action_space.shape).astype(np.float32)
    _, reward, terminated, _, stepped = env.step(action)
    _, score, *_ = plain.step(action)
    assert terminated and reward == pytest.approx(score - info["score"], abs=1e-5) and abs(reward) > 1e-3
    env.reset(seed=0)
    _, reward, *_ = env.step(tiny_space.vector_to_action(env.codec.canonical(chosen)))
    assert reward == pytest.approx(0.0, abs=1e-5)  # the start itself earns nothing
