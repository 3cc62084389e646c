import numpy as np

from vital_gym.describe import describe_preset


def test_description_follows_the_parameters(core_space, core_codec, human_presets):
    from vital_gym.preset import Preset

    x = core_codec.from_preset(Preset.load(human_presets[0]))
    text = describe_preset(core_space, x)
    assert text == describe_preset(core_space, x)  # deterministic
    assert "Amplitude envelope" in text and "Modulation" in text
    off = x.copy()
    for i in (1, 2, 3):
        off[core_space.index[f"osc_{i}_on"]] = 0.0
    off[core_space.index["sample_on"]] = 0.0
    assert "silent" in describe_preset(core_space, off)
    one = off.copy()
    one[core_space.index["osc_2_on"]] = 1.0
    one[core_space.index["osc_2_unison_voices"]] = core_space["osc_2_unison_voices"].normalize(5)
    text = describe_preset(core_space, one)
    assert "Oscillator 2" in text and "Oscillator 1" not in text and "5 unison voices" in text


def test_description_of_a_random_preset_names_its_routes(core_space, core_codec):
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = core_codec.canonical(core_space.sample(rng))
        text = describe_preset(core_space, x)
        for src, dst, _ in core_codec.routes(x):
            assert f"{src} -> {dst}" in text
