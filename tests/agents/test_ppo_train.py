import json

import numpy as np
import pytest
import yaml

from agents.benchmark.methods import RLPolicy
from agents.ppo.train import RLConfig, load_policy, train
from tests.agents.conftest import TINY_MODEL
from tests.agents.test_dataset import tiny_config
from tests.conftest import TINY_SPACE
from vital_gym.audio import write_wav
from vital_gym.envs import VitalMatchEnv
from vital_gym.resources import find_config

SR = 44100


@pytest.fixture
def tiny_space_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_SPACE))
    return str(path)


@pytest.fixture
def four_wavs(tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    for k, f in enumerate((147.0, 196.0, 262.0, 330.0)):
        t = np.arange(int(0.3 * SR)) / SR
        write_wav(folder / f"v{k}.wav", (0.3 * np.sin(2 * np.pi * f * t) * np.exp(-t))[None].astype(np.float32), SR)
    return folder


def rl_config(tmp_path, space_file, checkpoint, targets, vec="dummy") -> RLConfig:
    config = tiny_config()
    return RLConfig(
        algo="ppo",
        n_envs=2,
        n_timesteps=8,
        vec=vec,
        out=str(tmp_path / "run"),
        n_eval=2,
        eval_every=4,
        held_out_every=4,
        policy_kwargs={"checkpoint": checkpoint, "model": TINY_MODEL},
        env_kwargs={"space": space_file, "targets": targets, "render": config.render, "observation": config.observation},
        hyperparams={"n_steps": 4, "batch_size": 4, "n_epochs": 1, "learning_rate": 1e-3},
    )


def test_fine_tuning_on_a_folder_of_four_wavs_holds_one_out(tmp_path, tiny_space_file, four_wavs, tiny_checkpoint):
    config = rl_config(tmp_path, tiny_space_file, str(tiny_checkpoint), f"audio:{four_wavs}", vec="subproc")
    history = train(config, log=lambda *_: None)
    steps = [c["timesteps"] for c in history["curve"]]
    assert steps[0] == 0 and steps[-1] >= 8 and steps == sorted(set(steps))  # one evaluation per point, after its updates
    assert np.isfinite(history["before"]["spectral_distance"]) and np.isfinite(history["after"]["spectral_distance"])
    run = tmp_path / "run"
    assert json.loads((run / "eval_history.json").read_text())["after"] == history["after"]
    assert list((run / "tb").glob("events.out.tfevents.*"))
    # The saved policy reloads from safetensors + JSON alone and acts as the trained one did.
    env = VitalMatchEnv(**{**config.env_kwargs, "targets": f"audio:{four_wavs}"})
    obs, _ = env.reset(seed=0)
    policy = load_policy(run / "last", env)
    action, _ = policy.predict(obs, deterministic=True)
    assert action.shape == env.action_space.shape
    meta = json.loads((run / "last" / "config.json").read_text())
    assert "checkpoint" not in meta["policy_kwargs"] and meta["warm_start"] == str(tiny_checkpoint)
    assert RLPolicy(run / "last", env.codec).description.endswith(f"warm-started from {tiny_checkpoint}")


def test_ppo_from_scratch_and_trpo_run(tmp_path, tiny_space_file):
    history = train(rl_config(tmp_path / "a", tiny_space_file, None, "random"), log=lambda *_: None)
    assert np.isfinite(history["after"]["mean_reward"])
    assert json.loads((tmp_path / "a" / "run" / "last" / "config.json").read_text())["warm_start"] is None
    config = rl_config(tmp_path / "b", tiny_space_file, None, "random")
    config.algo, config.hyperparams = "trpo", {"n_steps": 4, "batch_size": 4, "n_critic_updates": 1}
    config.policy_kwargs["action_distribution"] = "layout"  # TRPO's trust region needs the layout's closed-form KL
    assert np.isfinite(train(config, log=lambda *_: None)["after"]["mean_reward"])


@pytest.mark.parametrize("name, algo", [("ppo", "ppo"), ("trpo", "trpo"), ("ppo_refine", "ppo")])
def test_shipped_rl_configs_parse(name, algo):
    config = RLConfig.from_yaml(find_config("rl", name))
    assert config.algo == algo and config.env_kwargs["space"] == "core"
    assert config.refine == (name == "ppo_refine") and bool(config.start) == config.refine


def test_bad_rl_config_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"VitalMatch-v0": {"algo": "dqn"}}))
    with pytest.raises(ValueError, match="dqn"):
        RLConfig.from_yaml(path)
    with pytest.raises(ValueError, match="no block for"):
        RLConfig.from_yaml(path, env_id="Other-v0")


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"group_size": 3}, "divide n_envs=2"),
        ({"group_size": 0}, "at least 1"),
        ({"group_size": 2, "env_kwargs": {"mode": "refine"}}, "one-step episodes"),
        ({"vec": "threads"}, "vec 'threads'"),
        ({"algo": "trpo", "policy_kwargs": {"action_distribution": "hypotheses"}}, "closed-form KL"),
        ({"start_choice": "best"}, "start_choice 'best'"),
    ],
)
def test_bad_settings_are_named(changes, problem):
    with pytest.raises(ValueError, match=problem):
        RLConfig(n_envs=2, **changes).check()


def test_group_relative_ppo_plays_each_groups_envs_on_one_target_per_step(tmp_path, tiny_space_file, tiny_checkpoint):
    """Four worker processes in two groups: the buffer refuses a group whose members observed different
    targets, so a run that trains shows the groups stayed in step (and differ from each other)."""
    config = rl_config(tmp_path, tiny_space_file, str(tiny_checkpoint), "random", vec="subproc")
    config.n_envs, config.group_size, config.n_timesteps = 4, 2, 32  # two rollouts of 4 steps x 4 envs
    from agents.ppo import train as train_module

    seen = []

    class Recording(train_module.GroupRolloutBuffer):
        def compute_returns_and_advantage(self, last_values, dones):
            super().compute_returns_and_advantage(last_values, dones)
            seen.append((self.observations.copy(), self.advantages.copy()))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "GroupRolloutBuffer", Recording)
        history = train(config, log=lambda *_: None)
    assert np.isfinite(history["after"]["spectral_distance"]) and len(seen) == 2
    for obs, advantages in seen:
        assert not np.allclose(obs[:, 0], obs[:, 2])  # two groups, two targets
        assert np.allclose(advantages.reshape(-1, 2, 2).sum(-1), 0.0, atol=1e-5)


def test_ppo_collects_rollouts_from_ray_actors(ray_cluster, tmp_path, tiny_space_file, tiny_checkpoint):
    config = rl_config(tmp_path, tiny_space_file, str(tiny_checkpoint), "random", vec="ray")
    history = train(config, log=lambda *_: None)
    assert history["curve"][-1]["timesteps"] >= 8 and np.isfinite(history["after"]["spectral_distance"])


def test_a_saved_policy_is_a_benchmark_method(tmp_path, tiny_space_file, tiny_checkpoint, tiny_space):
    from agents.benchmark.methods import RLPolicy
    from agents.benchmark.testsets import TestItem
    from vital_gym.preset import PresetCodec
    from vital_gym.render import Renderer

    config = rl_config(tmp_path, tiny_space_file, str(tiny_checkpoint), "random")
    train(config, log=lambda *_: None)
    method = RLPolicy(tmp_path / "run" / "last", PresetCodec(tiny_space))
    target = Renderer(method.env.render_config).render(PresetCodec(tiny_space).to_preset(tiny_space.sample(np.random.default_rng(1)))).audio
    pred = method.predict(TestItem("synthetic", "t", target, 60, 0.7))
    assert pred.preset is not None and method.name == "ppo"
    # Acting is deterministic: the same target gives the same preset.
    assert method.predict(TestItem("synthetic", "t", target, 60, 0.7)).preset.settings == pred.preset.settings
    # A note-conditioned policy acts for the note each item is rendered at, as the supervised methods do.
    import torch

    with torch.no_grad():
        method.model.policy.mlp_extractor.decoder.note_proj.weight.normal_()  # a note map that matters
    low, high = (method.predict(TestItem("synthetic", "t", target, note, 0.7)).preset.settings for note in (48, 72))
    assert low != high and method.model.policy.midi_note == 72
    with pytest.raises(FileNotFoundError, match="no saved policy"):
        RLPolicy(tmp_path, PresetCodec(tiny_space))


@pytest.mark.parametrize("warm, problem", [(True, "was trained on observations"), (False, "model reads the 'vital' frontend")])
def test_an_env_observing_what_the_network_was_not_trained_on_is_refused(tmp_path, tiny_space_file, tiny_checkpoint, warm, problem):
    config = rl_config(tmp_path, tiny_space_file, str(tiny_checkpoint) if warm else None, "random")
    config.env_kwargs["observation"] = {"frontend": "audiomae", "n_mels": 32}
    with pytest.raises(ValueError, match=problem):
        train(config, log=lambda *_: None)
    assert not (tmp_path / "run").exists()


def test_ppo_trains_on_a_dataset_configs_presets_in_worker_processes(tmp_path, tiny_space_file, tiny_checkpoint):
    config_file = tmp_path / "tiny_dataset.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config().to_dict()))
    config = rl_config(tmp_path, tiny_space_file, str(tiny_checkpoint), f"dataset:{config_file}", vec="subproc")
    history = train(config, log=lambda *_: None)
    assert np.isfinite(history["before"]["spectral_distance"]) and np.isfinite(history["after"]["spectral_distance"])
    assert json.loads((tmp_path / "run" / "last" / "config.json").read_text())["env_kwargs"]["targets"] == f"dataset:{config_file}"
    core = tmp_path / "core_dataset.yaml"
    core.write_text(yaml.safe_dump({**tiny_config().to_dict(), "space": "core"}))
    with pytest.raises(ValueError, match="is not the env's parameter space 'tiny'"):
        train(rl_config(tmp_path / "x", tiny_space_file, str(tiny_checkpoint), f"dataset:{core}"), log=lambda *_: None)
    with pytest.raises(ValueError, match="needs a dataset config"):
        train(rl_config(tmp_path / "y", tiny_space_file, str(tiny_checkpoint), "dataset"), log=lambda *_: None)
