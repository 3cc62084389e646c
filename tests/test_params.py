import numpy as np
import pytest

from vital_gym.params import Kind, ParameterSpace, control_catalog, control_parameter


def test_catalog_comes_from_vita():
    catalog = control_catalog()
    assert len(catalog) == 772
    assert sum(c.is_discrete for c in catalog.values()) == 351
    cutoff = catalog["filter_1_cutoff"]
    assert (cutoff.min, cutoff.max, cutoff.default) == (8.0, 136.0, 60.0)


def test_normalisation_is_vitals_host_parameter_value():
    """Normalised = (value - min) / (max - min), Vital's ValueBridge (what a DAW automates), linear in the
    stored value whatever the display scale. Vita's get_normalized() agrees for linear, quartic and
    indexed controls; for exponential/quadratic ones it applies the display skew, so it is not compared."""
    import vita

    synth = vita.Synth()
    controls = synth.get_controls()
    rng = np.random.default_rng(0)
    compared = 0
    for name, info in control_catalog().items():
        p = control_parameter(name)
        assert p.normalize(info.min) == 0.0 and p.normalize(info.max) == 1.0
        if not info.is_discrete:
            assert p.normalize((info.min + info.max) / 2) == pytest.approx(0.5)
        if info.scale in ("Linear", "Quartic", "Indexed"):
            value = float(rng.uniform(info.min, info.max))
            value = float(round(value)) if info.is_discrete else value
            controls[name].set(value)
            assert p.normalize(value) == pytest.approx(controls[name].get_normalized(), abs=1e-5), name
            compared += 1
    assert compared > 700


@pytest.mark.parametrize(
    "name, value, display",
    [
        ("env_1_attack", 1.0, 1.0),  # quartic: seconds = value ** 4
        ("env_1_attack", 2.0**0.25, 2.0),
        ("filter_1_cutoff", 60.0, 0.0),  # semitones relative to middle C... offset -60
        ("volume", 80.0**2, 0.0),  # square root: dB = sqrt(value) - 80
        ("lfo_1_frequency", 1.0, 0.5),  # exponential, shown as a period: seconds = 2 ** -value
        ("reverb_decay_time", 1.0, 2.0),  # exponential: seconds = 2 ** value
        ("osc_1_level", 0.5, 0.25),  # quadratic
    ],
)
def test_display_units_follow_the_value_scale(name, value, display):
    assert control_parameter(name).display(value) == pytest.approx(display, rel=1e-5)


def test_display_is_the_number_vital_shows():
    """Every continuous and integer control at three knob positions: our display value is the number in
    Vita's own text (options are compared elsewhere)."""
    import re

    import vita

    synth = vita.Synth()  # kept: its controls point into it
    controls = synth.get_controls()
    compared = 0
    for name, info in control_catalog().items():
        p = control_parameter(name)
        if p.kind is Kind.CATEGORICAL or p.kind is Kind.TOGGLE:
            continue
        for knob in (0.1, 0.5, 0.9):
            value = p.clip(info.min + knob * (info.max - info.min))
            controls[name].set(value)
            shown = re.match(r"\s*([-+]?[0-9.]+)", controls[name].get_text())
            assert shown, f"{name}: no number in Vita's text {controls[name].get_text()!r}"
            assert p.display(value) == pytest.approx(float(shown.group(1)), rel=2e-3, abs=2e-3), f"{name} at {value}"
            compared += 1
    assert compared > 1300


@pytest.mark.parametrize(
    "name, kind, width",
    [
        ("osc_1_on", Kind.TOGGLE, 1),
        ("filter_1_model", Kind.CATEGORICAL, 8),
        ("osc_1_transpose", Kind.INTEGER, 1),
        ("filter_1_cutoff", Kind.CONTINUOUS, 1),
    ],
)
def test_kinds_from_control_details(name, kind, width):
    p = control_parameter(name)
    assert p.kind is kind and p.width == width
    if kind is Kind.CATEGORICAL:
        assert p.options[:3] == ("Analog", "Dirty", "Ladder")


def test_categorical_with_fewer_listed_options_than_values():
    p = control_parameter("filter_1_style")  # Vita lists 5 names for 10 values
    assert p.n_values == 10 and len(p.options) == 10 and p.options[:2] == ("12dB", "24dB")
    assert control_parameter("filter_1_style", {"high": 4}).options == ("12dB", "24dB", "Notch Blend", "Notch Spread", "B/P/N")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"parameters": ["filter_1_cutof"]}, "not a Vital control"),
        ({"parameters": [{"name": "filter_1_cutoff", "low": 0, "high": 200}]}, "not inside Vital's"),
        ({"parameters": ["osc_1_level", "osc_1_level"]}, "listed twice"),
        ({"parameters": ["osc_1_level"], "priors": {"osc_1_level": {"low": 0.8, "high": 0.2}}}, "prior"),
        ({"parameters": ["osc_1_level"], "priors": {"osc_2_level": {"low": 0.1}}}, "not in the space"),
        ({"parameters": ["osc_1_level"], "modulation": {"slots": 1, "sources": ["lfo_9"], "destinations": ["volume"]}}, "unknown modulation sources"),
        ({"parameters": ["osc_1_level"], "modulation": {"slots": 1, "destinations": ["nowhere"]}}, "unknown modulation destinations"),
    ],
)
def test_bad_space_files_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        ParameterSpace.from_dict(spec)


def test_unknown_space_name_lists_available():
    with pytest.raises(FileNotFoundError, match="core"):
        ParameterSpace.load("nope")


def test_core_space(core_space):
    controls = [p for p in core_space.parameters if p.is_control]
    assert 80 <= len(controls) <= 110
    assert core_space.modulation.slots == 8
    for group in ("osc_1", "osc_2", "osc_3", "filter_1", "filter_2", "envelopes", "lfos", "global", "modulation_8"):
        assert group in core_space.groups
    assert "random" not in core_space.modulation.sources  # per-note random sources break reproducibility


def test_full_space_leaves_out_ui_and_performance_controls():
    full = ParameterSpace.load("full")
    names = set(full.names)
    for left_out in ("view_spectrogram", "pitch_wheel", "mod_wheel", "beats_per_minute", "mpe_enabled", "osc_1_view_2d"):
        assert left_out not in names
    for kept in ("reverb_dry_wet", "chorus_on", "delay_feedback", "osc_3_spectral_morph_type", "env_6_release"):
        assert kept in names
    assert full.modulation.slots == 32


def test_sampling_is_seeded_and_respects_priors(tiny_space):
    a = tiny_space.sample(np.random.default_rng(7))
    b = tiny_space.sample(np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    xs = np.stack([tiny_space.sample(np.random.default_rng(s)) for s in range(50)])
    assert xs.min() >= 0 and xs.max() <= 1
    assert np.all(xs[:, tiny_space.index["osc_1_on"]] == 1.0)
    assert xs[:, tiny_space.index["osc_1_level"]].min() >= 0.6


def test_action_layout_is_contiguous_and_grouped(tiny_space):
    stops = 0
    for s in tiny_space.layout:
        assert s.start == stops
        stops = s.stop
    assert stops == tiny_space.action_dim == 1 + 1 + 1 + 1 + 1 + 8 + 1 + 1 + 1 + 5 + 2 * (3 + 2 + 1)
    assert tiny_space.groups["modulation_1"] == ("mod_1_source", "mod_1_destination", "mod_1_amount")


@pytest.mark.parametrize("seed", range(5))
def test_action_encoding_round_trip(tiny_space, seed):
    x = tiny_space.sample(np.random.default_rng(seed), prior=False)
    a = tiny_space.vector_to_action(x)
    assert a.shape == (tiny_space.action_dim,) and a.min() >= -1 and a.max() <= 1
    np.testing.assert_allclose(tiny_space.action_to_vector(a), tiny_space.quantize(x), atol=1e-6)


def test_categorical_logits_decode_by_argmax(tiny_space):
    a = np.zeros(tiny_space.action_dim, dtype=np.float32)
    block = next(s for s in tiny_space.layout if s.name == "filter_1_model")
    a[block.start + 5] = 0.3  # any positive logit wins: "Formant"
    x = tiny_space.action_to_vector(a)
    assert tiny_space.describe_vector(x)["filter_1_model"] == "Formant"


@pytest.mark.parametrize(
    "name, knob, shown",
    [("chorus_voices", 1.0, 16), ("chorus_voices", 0.0, 4), ("osc_1_unison_voices", 1.0, 16), ("lfo_1_frequency", 0.5, 0.5), ("filter_1_cutoff", 0.5, 12.0)],
)
def test_described_values_are_what_vital_shows(name, knob, shown):
    """Vital shows chorus voices as 4x the stored value and an LFO rate as its period (here 2**-1 s)."""
    space = ParameterSpace.from_dict({"name": "one", "parameters": [name]})
    assert space.describe_vector(np.array([knob], dtype=np.float32))[name] == pytest.approx(shown)


@pytest.mark.parametrize(
    "action, message",
    [(np.zeros(3), "shape"), (np.full(64, np.nan), "NaN")],
)
def test_bad_actions(tiny_space, action, message):
    if action.shape[0] == 64:
        action = np.full(tiny_space.action_dim, np.nan)
    with pytest.raises(ValueError, match=message):
        tiny_space.action_to_vector(action)


def test_fingerprint_changes_with_the_space(tiny_space, core_space):
    assert tiny_space.fingerprint != core_space.fingerprint
    assert tiny_space.fingerprint == ParameterSpace.from_dict(__import__("tests.conftest", fromlist=["x"]).TINY_SPACE).fingerprint


@pytest.mark.parametrize("name", ["core", "full"])
def test_quantize_snaps_each_discrete_value_as_its_parameter_does(name):
    """The vectorised grid snap equals each parameter's own ``normalize(denormalize(x))``, bit for bit, on
    random vectors, on every grid point and halfway between two (round half to even), and outside [0, 1]."""
    space = ParameterSpace.load(name)
    rng = np.random.default_rng(0)
    steps = np.array([max(p.high - p.low, 1.0) for p in space.parameters])
    vectors = [rng.random(len(space)) * 1.2 - 0.1 for _ in range(300)]
    for k in range(300):
        grid = rng.integers(0, steps.astype(int) + 1) / steps
        vectors.append(grid + (0.5 / steps if k % 2 else 0.0))
    for x in np.asarray(vectors, dtype=np.float32):
        want = x.clip(0, 1).copy()
        for i, p in enumerate(space.parameters):
            if p.is_discrete:
                want[i] = p.normalize(p.denormalize(float(want[i])))
        np.testing.assert_array_equal(space.quantize(x), want)


@pytest.mark.parametrize("n_values", [2, 3, 8, 31])
def test_a_discrete_index_reads_the_same_from_a_float_an_array_and_a_tensor(n_values):
    import torch

    indices = np.arange(n_values)
    values = ParameterSpace.discrete_value(indices, n_values)
    assert [ParameterSpace.discrete_index(float(v), n_values) for v in values] == list(indices)
    np.testing.assert_array_equal(ParameterSpace.discrete_index(values, n_values), indices)
    assert torch.equal(ParameterSpace.discrete_index(torch.from_numpy(values).float(), n_values), torch.from_numpy(indices))
    # within half a step of a value reads that value's index
    nudged = values + (np.random.default_rng(0).uniform(-0.49, 0.49, n_values) / (n_values - 1))
    np.testing.assert_array_equal(ParameterSpace.discrete_index(np.clip(nudged, 0, 1), n_values), indices)
    assert ParameterSpace.discrete_value(0, 1) == 0.0
