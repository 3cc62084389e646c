import pickle

import numpy as np
import pytest
import yaml

from agents.dataset.targets import DatasetTargets
from tests.agents.test_dataset import tiny_config
from vital_gym.envs import VitalMatchEnv
from vital_gym.render import RenderConfig


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config().to_dict()))
    return path


def test_targets_are_the_configs_presets_at_the_envs_note_and_follow_the_rng(config_file, tiny_space):
    render = RenderConfig(note_seconds=0.15, render_seconds=0.25, midi_note=67, velocity=0.8)
    targets = DatasetTargets(config_file, render)
    assert targets.config.midi_notes == (67,) and targets.config.velocity == (0.8, 0.8)
    drawn = [targets.sample(np.random.default_rng([5, k])) for k in range(6)]
    assert {t.name for t in drawn} <= {"uniform-target", "pluck-target"}
    assert all(t.audio.shape == (1, render.num_samples) and t.params.shape == (len(tiny_space),) for t in drawn)
    again = pickle.loads(pickle.dumps(targets)).sample(np.random.default_rng([5, 0]))  # a worker's copy: its own synth
    np.testing.assert_array_equal(again.params, drawn[0].params)
    assert not np.array_equal(drawn[0].params, drawn[1].params)
    # In the env: its targets, played at its note, whose true parameters reproduce them.
    env = VitalMatchEnv(space=tiny_space, targets=targets, render=render, observation=tiny_config().observation)
    env.reset(seed=2)
    _, reward, terminated, _, info = env.step(env.space.vector_to_action(env.target.params))
    assert terminated and info["spectral_distance"] < 0.5
