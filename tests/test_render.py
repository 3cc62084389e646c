import numpy as np
import pytest

from vital_gym.preset import init_preset
from vital_gym.render import RenderConfig, Renderer, check_audio


def _preset(**values):
    p = init_preset()
    p.settings.update(values)
    return p


LONG_TAIL = {"env_1_release": 2.3, "osc_1_unison_voices": 4.0}
SILENT = {"osc_1_on": 0.0}
DELAYED = {"env_1_delay": 1.4142}  # a new note starts after 4 s: only an old tail can sound


def test_shapes_follow_the_config(short_render):
    mono = Renderer(short_render).render(init_preset())
    assert mono.audio.shape == (1, short_render.num_samples) and mono.audio.dtype == np.float32
    stereo = Renderer(RenderConfig(note_seconds=0.1, render_seconds=0.2, channels=2, sample_rate=48000)).render(init_preset())
    assert stereo.audio.shape == (2, 9600)


@pytest.mark.parametrize(
    "field, value",
    [
        ("midi_note", 200),
        ("velocity", 0.0),
        ("render_seconds", -1.0),
        ("sample_rate", 100),
        ("channels", 3),
        ("reset", "never"),
        ("settle_seconds", 0.0),
        ("oversampling", 4),
    ],
)
def test_bad_render_config(field, value):
    with pytest.raises(ValueError, match=field):
        RenderConfig(**{field: value})


def test_unknown_render_setting():
    with pytest.raises(ValueError, match="unknown render settings"):
        RenderConfig.from_dict({"note": 60})


@pytest.mark.parametrize("reset", ["auto", "fresh"])
def test_renders_do_not_depend_on_history(reset):
    renderer = Renderer(RenderConfig(note_seconds=0.25, render_seconds=0.5, reset=reset))
    target = _preset(filter_1_on=1.0, filter_1_cutoff=70.0, env_1_attack=0.6)
    first = renderer.render(target).audio
    renderer.render(_preset(**LONG_TAIL))  # a long tail that a reused synth would carry over
    np.testing.assert_array_equal(renderer.render(target).audio, first)


def test_random_phase_is_off_by_default_and_written_into_the_preset(short_render):
    prepared = Renderer(short_render).prepare(init_preset())
    assert all(prepared.settings[f"osc_{i}_random_phase"] == 0.0 for i in (1, 2, 3))
    randomised = Renderer(RenderConfig(note_seconds=0.25, render_seconds=0.5, random_phase=True))
    a, b = (randomised.render(init_preset()).audio for _ in range(2))
    assert np.max(np.abs(a - b)) > 1e-3  # Vital's default: a new phase every note


@pytest.mark.parametrize("reset, carries_tail", [("none", True), ("auto", False)])
def test_previous_release_tail_does_not_carry_over(reset, carries_tail):
    renderer = Renderer(RenderConfig(note_seconds=0.2, render_seconds=0.4, reset=reset))
    renderer.render(_preset(**LONG_TAIL))
    after = renderer.render(_preset(**LONG_TAIL, **DELAYED))
    assert after.status.silent is not carries_tail


@pytest.mark.parametrize("reset", ["none", "settle"])
def test_start_fresh_leaves_nothing_of_earlier_renders(reset):
    config = RenderConfig(note_seconds=0.2, render_seconds=0.4, reset=reset)
    renderer = Renderer(config)
    renderer.render(_preset(**LONG_TAIL))
    renderer.start_fresh()
    after = renderer.render(_preset(**LONG_TAIL, **DELAYED))
    assert after.status.silent  # the first render's tail is gone ...
    assert np.array_equal(after.audio, Renderer(config).render(_preset(**LONG_TAIL, **DELAYED)).audio)  # ... as on a new renderer


def _varied_presets(space, codec, n, seed):
    """Random core presets (without the random sampler), plus ones that take the new-synth route."""
    rng = np.random.default_rng(seed)
    presets = []
    while len(presets) < n:
        x = space.sample(rng)
        if x[space.index["sample_on"]] == 0:
            presets.append(codec.to_preset(x))
    presets[1] = presets[1].with_values({"osc_2_on": 1.0, "osc_3_on": 0.0, "osc_2_distortion_type": 7.0})  # FM <- Osc
    # three oscillators modulating each other in a cycle (one reads another's previous block)
    presets[2] = presets[2].with_values(
        {f"osc_{i}_on": 1.0 for i in (1, 2, 3)} | {"osc_1_distortion_type": 11.0, "osc_2_distortion_type": 7.0, "osc_3_distortion_type": 11.0}
    )
    presets[3] = presets[3].with_values({"reverb_on": 1.0, "delay_on": 1.0})
    return presets


def test_auto_reset_is_exact_whatever_came_before(core_space, core_codec):
    """Rendered in sequence on one reused synth, every preset equals its render on a new synth."""
    cfg = RenderConfig(note_seconds=0.3, render_seconds=0.5, channels=2)
    presets = _varied_presets(core_space, core_codec, 10, seed=21)
    reused = Renderer(cfg)
    sequence = [reused.render(p).audio for p in presets + presets[:3]]
    for i, p in enumerate(presets + presets[:3]):
        alone = Renderer(cfg.__class__(**{**cfg.__dict__, "reset": "fresh"})).render(p).audio
        assert np.max(np.abs(sequence[i] - alone)) < 1e-5, i


def test_many_renders_on_one_renderer_stay_exact(tiny_space, tiny_codec):
    """Past Vital's fresh voices (FRESH_VOICES notes) a reused voice kept state: this preset sounded 1.6e-3
    off from its 18th render on, until the renderer took a new synth in time."""
    from vital_gym.render import FRESH_VOICES

    values = {
        "osc_1_on": 1.0,
        "osc_1_level": 0.723,
        "osc_1_transpose": 0.542,
        "osc_1_wave_frame": 0.795,
        "filter_1_on": 1.0,
        "filter_1_model": 0.571,
        "filter_1_cutoff": 0.041,
        "env_1_attack": 0.188,
        "env_1_release": 0.091,
        "lfo_1_shape": 0.5,
    }
    x = tiny_codec.canonical(np.array([values.get(p.name, 0.0) for p in tiny_space.parameters], dtype=np.float32))
    preset = tiny_codec.to_preset(x)
    cfg = RenderConfig(note_seconds=0.15, render_seconds=0.25)
    alone = Renderer(RenderConfig(**{**cfg.__dict__, "reset": "fresh"})).render(preset, 60).audio
    reused = Renderer(cfg)
    for k in range(FRESH_VOICES):
        np.testing.assert_array_equal(reused.render(preset, 60).audio, alone, err_msg=f"render {k + 1}")


def test_settle_reset_is_exact_where_auto_reuses_the_synth(core_space, core_codec):
    """``settle`` differs from ``auto`` only on presets that need a new synth, and never builds one."""
    from vital_gym.render import needs_new_synth

    cfg = RenderConfig(note_seconds=0.3, render_seconds=0.5)
    presets = _varied_presets(core_space, core_codec, 10, seed=22)
    exact, settled = Renderer(cfg), Renderer(RenderConfig(**{**cfg.__dict__, "reset": "settle"}))
    synths = set()
    for p in presets + presets[:3]:
        got = settled.render(p).audio
        synths.add(id(settled._synth))
        if needs_new_synth(settled.prepare(p).settings) is None:
            np.testing.assert_array_equal(got, exact.render(p).audio)
    assert len(synths) == 1


def test_oversampling_override_is_written_into_the_prepared_preset(short_render):
    renderer = Renderer(RenderConfig(**{**short_render.__dict__, "oversampling": 0}))
    assert renderer.prepare(init_preset()).settings["oversampling"] == 0.0
    assert Renderer(short_render).prepare(init_preset()).settings["oversampling"] == init_preset().settings["oversampling"]
    assert renderer.render(init_preset()).status.ok


@pytest.mark.parametrize(
    "values, reason",
    [
        ({}, None),
        ({"osc_1_distortion_type": 10.0}, "osc_2, which is off"),  # RM <- Osc A: osc 1's A is osc 2
        ({"osc_2_on": 1.0, "osc_1_distortion_type": 7.0}, "runs after it"),  # FM <- osc 2, processed later
        ({"osc_2_on": 1.0, "osc_2_distortion_type": 7.0}, None),  # osc 2's A is osc 1: already written
        ({"osc_3_on": 1.0, "osc_3_distortion_type": 8.0}, "osc_2, which is off"),  # osc 3's B is osc 2
        ({"osc_1_distortion_type": 9.0}, "sampler"),  # FM <- Sample
        ({"osc_1_on": 0.0}, "no oscillator"),
        ({"osc_1_on": 0.0, "osc_2_on": 1.0, "osc_1_distortion_type": 10.0}, None),  # the modulating osc is off
        ({"reverb_on": 1.0}, "reverb keeps memory"),
    ],
)
def test_needs_new_synth(values, reason):
    from vital_gym.render import needs_new_synth

    got = needs_new_synth({**init_preset().settings, **values})
    assert (got is None) if reason is None else (reason in got), got


def test_silence_is_reported(renderer):
    status = renderer.render(_preset(**SILENT)).status
    assert status.silent and not status.ok and status.describe() == "silent"


@pytest.mark.parametrize(
    "audio, finite, silent, clipped",
    [
        (np.zeros((1, 100)), True, True, False),
        (np.full((1, 100), 0.5), True, False, False),
        (np.full((1, 100), 1.5), True, False, True),
        (np.array([[0.5, np.nan]]), False, False, False),
    ],
)
def test_check_audio(audio, finite, silent, clipped):
    s = check_audio(audio.astype(np.float32))
    assert (s.finite, s.silent, s.clipped) == (finite, silent, clipped)


def test_loud_preset_is_flagged_clipped():
    loud = _preset(volume=7399.0, osc_1_unison_voices=16.0, osc_1_level=1.0)
    status = Renderer(RenderConfig(note_seconds=0.2, render_seconds=0.3, channels=2)).render(loud).status
    assert status.clipped and status.peak > 1.0


def test_hand_built_preset_is_validated_before_vita(short_render):
    from vital_gym.preset import Preset, PresetError

    data = init_preset().data
    bad = Preset(data={**data, "settings": {**data["settings"], "filter_1_cutoff": float("nan")}})
    for random_phase in (False, True):
        with pytest.raises(PresetError, match="filter_1_cutoff"):
            Renderer(RenderConfig(note_seconds=0.1, render_seconds=0.2, random_phase=random_phase)).render(bad)


@pytest.mark.parametrize("space_name", ["full", "studio"])
def test_random_presets_never_crash_the_process(space_name):
    """Uniform draws over every sound-shaping control (``full``) and over bank wavetables and effects
    (``studio``) render finite audio (run in a subprocess: a Vita crash would otherwise take the test run
    down with it)."""
    import subprocess
    import sys

    code = (
        "import numpy as np; from vital_gym.params import ParameterSpace; from vital_gym.preset import PresetCodec;"
        "from vital_gym.render import Renderer, RenderConfig;"
        f"s = ParameterSpace.load('{space_name}');"
        " c = PresetCodec(s); r = Renderer(RenderConfig(note_seconds=0.1, render_seconds=0.2));"
        "print(all(r.render(c.to_preset(s.sample(np.random.default_rng(k), prior=False))).status.finite for k in range(12)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("True")


def test_note_and_velocity_per_render(core_space, core_codec):
    """Per-call notes match a renderer configured with that note, after any history."""
    presets = _varied_presets(core_space, core_codec, 4, seed=5)
    cfg = RenderConfig(note_seconds=0.2, render_seconds=0.3)
    varying = Renderer(cfg)
    for note, velocity, preset in zip((48, 72, 60, 36), (0.5, 1.0, 0.8, 0.3), presets):
        got = varying.render(preset, midi_note=note, velocity=velocity).audio
        fixed = Renderer(RenderConfig(note_seconds=0.2, render_seconds=0.3, midi_note=note, velocity=velocity, reset="fresh"))
        np.testing.assert_allclose(got, fixed.render(preset).audio, atol=1e-5)
    with pytest.raises(ValueError, match="midi_note"):
        varying.render(presets[0], midi_note=300)


@pytest.mark.parametrize("renderers, items", [(1, 5), (2, 5), (3, 2), (2, 0)])
def test_side_by_side_keeps_the_order_and_gives_each_renderer_every_nth_item(renderers, items):
    from vital_gym.render import side_by_side

    workers = [f"r{w}" for w in range(renderers)]  # stand-ins: side_by_side only hands them to `work`
    got = side_by_side(workers, list(range(items)), lambda r, i: (r, i))
    n = min(renderers, items)
    assert got == [(f"r{i % n}", i) for i in range(items)]


@pytest.mark.slow
@pytest.mark.parametrize("space_name, n, seed", [("core", 24, 22), ("full", 8, 1), ("studio", 12, 3)])
def test_auto_reset_renders_equal_a_new_synths_over_many_random_presets(space_name, n, seed):
    """Presets rendered in sequence on one ``auto`` renderer, each bit-identical to a new synth's render,
    whichever route (settled or new synth) the renderer took."""
    from vital_gym.params import ParameterSpace
    from vital_gym.preset import PresetCodec
    from vital_gym.render import needs_new_synth

    space = ParameterSpace.load(space_name)
    codec = PresetCodec(space)
    config = RenderConfig(channels=2, note_seconds=1.0, render_seconds=1.5)
    reused, fresh = Renderer(config), Renderer(RenderConfig(channels=2, note_seconds=1.0, render_seconds=1.5, reset="fresh"))
    rng = np.random.default_rng(seed)
    routes, checked = set(), 0
    while checked < n:
        preset = codec.to_preset(space.sample(rng))
        if preset.settings.get("sample_on"):  # Vita's random sampler: no two renders agree
            continue
        checked += 1
        routes.add(bool(needs_new_synth(preset.settings)))
        difference = np.abs(reused.render(preset).audio - fresh.render(preset).audio).max()
        assert difference < 1e-5, f"{space_name} preset {checked}: max abs difference {difference:.3g}"
    assert routes == {True, False} or space_name != "core"  # both routes taken on the core space (effects rarely spare a new synth elsewhere)
