import warnings

import numpy as np
import pytest
import soundfile as sf

from vital_gym.preset import init_preset
from vital_gym.targets import AudioFolderTargets, PresetFolderTargets, RandomPresetTargets, TargetError, make_targets


def _tone(seconds, rate, channels=1, freq=220.0):
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * freq * t)] * channels, axis=1).astype(np.float32)


def test_random_targets_are_seeded_audible_and_carry_params(tiny_space, tiny_codec, renderer):
    source = RandomPresetTargets(tiny_space, tiny_codec, renderer)
    a = source.sample(np.random.default_rng(3))
    b = source.sample(np.random.default_rng(3))
    np.testing.assert_array_equal(a.audio, b.audio)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.audio.shape == (1, renderer.config.num_samples) and not np.allclose(a.audio, 0)
    np.testing.assert_array_equal(tiny_codec.from_preset(a.preset), a.params)


def test_preset_folder_skips_a_bad_file_and_names_it(tmp_path, renderer):
    init_preset().save(tmp_path / "good.vital")
    (tmp_path / "a_broken.vital").write_text("{oops")
    source = PresetFolderTargets(tmp_path, renderer)
    with pytest.warns(UserWarning, match="a_broken.vital.*not valid JSON"):
        target = source.get(0)
    assert target.name == "good"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, then skipped quietly
        assert source.get(0).name == "good"


def test_folder_with_only_bad_presets_is_an_error(tmp_path, renderer):
    (tmp_path / "x.vital").write_text("[]")
    with pytest.warns(UserWarning), pytest.raises(TargetError, match="no usable preset"):
        PresetFolderTargets(tmp_path, renderer).get(0)


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_missing_or_empty_folder(tmp_path, renderer, make):
    with pytest.raises(TargetError, match="does not exist|holds no"):
        PresetFolderTargets(make(tmp_path), renderer)


def test_audio_folder_targets(tmp_path, renderer):
    sf.write(str(tmp_path / "hum.wav"), _tone(1.0, 22050), 22050)
    (tmp_path / "corrupt.wav").write_bytes(b"not audio")
    sf.write(str(tmp_path / "quiet.wav"), np.zeros((22050, 1), dtype=np.float32), 22050)
    source = AudioFolderTargets(tmp_path, renderer)
    names = set()
    with pytest.warns(UserWarning) as record:
        for i in range(3):
            names.add(source.get(i).name)
    assert names == {"hum"}
    messages = " ".join(str(w.message) for w in record)
    assert "corrupt.wav" in messages and "quiet.wav" in messages and "silent" in messages
    assert source.get(0).params is None


@pytest.mark.parametrize("spec", ["nonsense", {"kind": "presets"}, 42])
def test_bad_target_specs(spec, tiny_space, tiny_codec, renderer):
    with pytest.raises(ValueError):
        make_targets(spec, tiny_space, tiny_codec, renderer)
