import re

import numpy as np
import pytest

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
            assert re.search(rf"{src}( \[init settings\])? -> {dst}", text), (src, dst)
            if src in ("lfo_1", "lfo_2"):
                assert f"LFO {src[-1]}:" in text


def _with_route(space, codec, source: str, **values) -> np.ndarray:
    """Oscillator 1 on, one route ``source -> filter_1_cutoff`` in slot 1, and ``values`` (stored units)."""
    x = space.defaults()
    x[space.index["osc_1_on"]] = 1.0
    for name, value in {"mod_1_source": source, "mod_1_destination": "filter_1_cutoff", **values}.items():
        p = space[name]
        x[space.index[name]] = p.normalize(p.options.index(value) + p.low if isinstance(value, str) else value)
    x[space.index["mod_1_amount"]] = space["mod_1_amount"].normalize(0.5)
    return codec.canonical(x)


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"lfo_1_sync": "Seconds", "lfo_1_frequency": 1.0}, "a cycle every 0.5 secs (2 Hz)"),  # Vital shows 2**-value s
        ({"lfo_1_sync": "Tempo", "lfo_1_tempo": "1/4"}, "synced to tempo at 1/4."),
        ({"lfo_1_sync": "Tempo Dotted", "lfo_1_tempo": "1/8"}, "synced to tempo at 1/8 dotted"),
        ({"lfo_1_sync": "Keytrack"}, "keytracked"),
    ],
)
def test_lfo_rate_is_described_as_its_sync_mode_sets_it(core_space, core_codec, values, expected):
    text = describe_preset(core_space, _with_route(core_space, core_codec, "lfo_1", **values))
    line = next(line for line in text.splitlines() if line.startswith("LFO 1:"))
    assert expected in line and "LFO 2" not in text  # LFO 2 modulates nothing: not described


def test_routes_name_sources_the_space_does_not_set(core_space, core_codec):
    assert "lfo_7 [init settings] -> filter_1_cutoff" in describe_preset(core_space, _with_route(core_space, core_codec, "lfo_7"))
    assert "env_4 [init settings] -> filter_1_cutoff" in describe_preset(core_space, _with_route(core_space, core_codec, "env_4"))
    for source in ("lfo_2", "env_2", "velocity"):
        assert f"Modulation: {source} -> filter_1_cutoff" in describe_preset(core_space, _with_route(core_space, core_codec, source))


def test_filter_cutoff_is_given_in_hz(core_space, core_codec):
    x = _with_route(core_space, core_codec, "lfo_1", filter_1_on=1.0, filter_1_cutoff=69.0)  # MIDI 69 = A4
    assert "cutoff 9 semitones (440 Hz)" in describe_preset(core_space, x)


@pytest.mark.parametrize(
    "filter_1_on, filter_2_on, destination, remark",
    [
        (0.0, 0.0, "FILTER 1", True),
        (0.0, 0.0, "FILTER 1+2", True),
        (1.0, 0.0, "FILTER 1+2", False),
        (1.0, 0.0, "FILTER 1", False),
        (0.0, 0.0, "DIRECT OUT", False),
    ],
)
def test_an_oscillator_into_filters_that_are_off_is_said_to_be_unfiltered(core_space, core_codec, filter_1_on, filter_2_on, destination, remark):
    """Vital passes an oscillator routed into a filter that is off through unfiltered (measured through Vita)."""
    x = _with_route(core_space, core_codec, "lfo_1", filter_1_on=filter_1_on, filter_2_on=filter_2_on, osc_1_destination=destination)
    line = describe_preset(core_space, x).splitlines()[0]
    assert f"into {destination}" in line and ("(off: unfiltered)" in line) == remark


def test_vital_passes_a_sound_through_a_filter_that_is_off():
    """What the remark above rests on: into FILTER 1 (off) sounds as loud as DIRECT OUT."""
    import vita

    rms = []
    for destination in ("FILTER 1", "DIRECT OUT"):
        synth = vita.Synth()
        controls = synth.get_controls()
        options = synth.get_control_details("osc_1_destination").options
        controls["osc_1_destination"].set(float(options.index(destination)))
        controls["filter_1_on"].set(0.0)
        audio = synth.render(60, 0.7, 0.3, 0.3)
        rms.append(float(np.sqrt(np.mean(audio**2))))
    assert rms[0] > 0.01 and rms[0] == pytest.approx(rms[1], rel=0.02)


@pytest.mark.parametrize("source, described", [("env_2", "Envelope 2: a slow, swelling attack"), ("env_3", "Envelope 3:"), ("lfo_1", None)])
def test_a_modulation_envelope_is_described_when_a_route_uses_it(core_space, core_codec, source, described):
    x = _with_route(core_space, core_codec, source, env_2_attack=1.0, env_3_hold=0.5)  # 1 s attack; hold 0.0625 s
    text = describe_preset(core_space, x)
    assert text.count("nvelope 2:") == (source == "env_2") and text.count("nvelope 3:") == (source == "env_3")
    if described:
        assert described in text
    if source == "env_3":
        assert "hold 0.0625 secs" in text


@pytest.fixture(scope="module")
def full_space():
    from vital_gym.params import ParameterSpace

    return ParameterSpace.load("full")


def _full_with(space, **values) -> np.ndarray:
    """The full space's defaults with ``values`` (stored units; option names for categorical ones)."""
    x = space.defaults()
    x[space.index["osc_1_on"]] = 1.0
    for name, value in values.items():
        p = space[name]
        x[space.index[name]] = p.normalize(p.options.index(value) + p.low if isinstance(value, str) else value)
    return x


def test_effects_line_only_where_the_space_holds_effects(core_space, core_codec, full_space):
    assert "Effects" not in describe_preset(core_space, _with_route(core_space, core_codec, "lfo_1"))
    assert "Effects: none." in describe_preset(full_space, _full_with(full_space))


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"reverb_on": 1.0, "reverb_decay_time": 1.0, "reverb_dry_wet": 0.25}, "reverb (decay time 2 secs, size 50 %, dry/wet 25 %)"),
        ({"delay_on": 1.0, "delay_sync": "Tempo Dotted", "delay_tempo": "1/4"}, "delay (synced to tempo at 1/4 dotted, style"),
        ({"delay_on": 1.0, "delay_sync": "Seconds", "delay_frequency": 2.0}, "delay (time 0.25 secs (4 Hz), style"),
        ({"chorus_on": 1.0, "chorus_voices": 4.0}, "voices 16"),  # Vital shows 4x the stored value
        ({"filter_fx_on": 1.0, "filter_fx_cutoff": 69.0}, "filter (model Analog, cutoff 9 semitones (440 Hz)"),
        ({"distortion_on": 1.0, "eq_on": 1.0}, "Effects: distortion (type Soft Clip"),
    ],
)
def test_effects_that_are_on_are_described(full_space, values, expected):
    line = next(line for line in describe_preset(full_space, _full_with(full_space, **values)).splitlines() if line.startswith("Effects:"))
    assert expected in line
    for fx in ("reverb", "delay", "chorus", "distortion"):
        assert (f"{fx} (" in line) == (values.get(f"{fx}_on", 0.0) > 0)


def test_an_oscillators_wavetable_is_named(studio_space, studio_codec):
    x = studio_space.defaults()
    x[studio_space.index["osc_1_wavetable"]] = studio_space["osc_1_wavetable"].normalize(studio_space.wavetables.names.index("Vowels Mid"))
    assert "Oscillator 1: level" in describe_preset(studio_space, x) and "wavetable 'Vowels Mid'" in describe_preset(studio_space, x)
