import json
import subprocess
import sys

import numpy as np
import pytest

from vital_gym.preset import Preset, PresetCodec, PresetError, init_preset, validate_settings
from vital_gym.render import RenderConfig, Renderer


def _settings(**values):
    s = init_preset().settings
    s.update(values)
    return s


@pytest.mark.parametrize(
    "values, message",
    [
        ({"filter_1_cutoff": float("nan")}, "NaN"),
        ({"filter_1_cutoff": float("inf")}, "NaN/Inf"),
        ({"filter_1_cutoff": "loud"}, "must be a number"),
        ({"osc_1_on": True}, "must be a number"),
        ({"modulations": [{"source": "lfo_99", "destination": "filter_1_cutoff"}]}, "unknown source"),
        ({"modulations": [{"source": "lfo_1", "destination": "nowhere"}]}, "unknown destination"),
    ],
)
def test_invalid_values_are_rejected(values, message):
    with pytest.raises(PresetError, match=message):
        validate_settings(_settings(**values), name="bad.vital")


def test_out_of_range_values_are_clamped_and_reported():
    s = _settings(filter_1_cutoff=1e6, osc_1_transpose=2.6, compressor_high_upper_ratio=1.0047)
    report = {c.control: c for c in validate_settings(s)}
    assert s["filter_1_cutoff"] == 136.0 and report["filter_1_cutoff"].given == 1e6
    assert s["osc_1_transpose"] == 3.0  # discrete values snap to their grid
    assert s["compressor_high_upper_ratio"] == 1.0
    with pytest.raises(PresetError, match="outside Vital's range"):
        validate_settings(_settings(filter_1_cutoff=1e6), on_out_of_range="raise")


def test_out_of_range_preset_never_reaches_vita(tmp_path):
    """Vita segfaults on render for cutoff = 1e6; through the renderer the value is clamped first."""
    data = json.loads(init_preset().to_json())
    data["settings"]["filter_1_cutoff"] = 1e6
    data["settings"]["filter_1_on"] = 1.0
    path = tmp_path / "dangerous.vital"
    path.write_text(json.dumps(data))
    code = (
        "from vital_gym.preset import Preset; from vital_gym.render import Renderer, RenderConfig;"
        f"p = Preset.load({str(path)!r}); r = Renderer(RenderConfig(render_seconds=0.2, note_seconds=0.1)).render(p);"
        "print(p.settings['filter_1_cutoff'], r.status.finite)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["136.0", "True"]


@pytest.mark.parametrize("content, message", [("{not json", "not valid JSON"), ('{"a": 1}', "'settings' object"), ("", "not valid JSON")])
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken.vital"
    path.write_text(content)
    with pytest.raises(PresetError, match=f"broken.vital.*{message}"):
        Preset.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(PresetError, match="no such preset"):
        Preset.load(tmp_path / "nope.vital")


def test_save_is_atomic_and_adds_the_suffix(tmp_path):
    path = init_preset().save(tmp_path / "sub" / "mine")
    assert path.name == "mine.vital" and path.is_file()
    assert not list(path.parent.glob("*.tmp"))
    assert Preset.load(path).settings["filter_1_cutoff"] == 60.0


@pytest.mark.parametrize("space_fixture", ["tiny", "core", "studio"])
@pytest.mark.parametrize("seed", range(4))
def test_vector_preset_vector_round_trip(request, space_fixture, seed):
    space = request.getfixturevalue(f"{space_fixture}_space")
    codec = request.getfixturevalue(f"{space_fixture}_codec")
    x = space.sample(np.random.default_rng(seed), prior=False)
    canonical = codec.canonical(x)
    np.testing.assert_allclose(codec.from_preset(codec.to_preset(x)), canonical, atol=1e-6)
    np.testing.assert_allclose(codec.canonical(canonical), canonical)  # idempotent
    # only slot order and repeated routes may differ from the quantised input
    controls = [i for i, p in enumerate(space.parameters) if p.is_control]
    np.testing.assert_allclose(canonical[controls], space.quantize(x)[controls], atol=1e-6)


def test_modulation_slots_compact_and_deduplicate(tiny_space, tiny_codec):
    x = tiny_space.defaults()

    def put(slot, src, dst, amount):
        x[tiny_space.index[f"mod_{slot}_source"]] = tiny_space[f"mod_{slot}_source"].normalize(src)
        x[tiny_space.index[f"mod_{slot}_destination"]] = tiny_space[f"mod_{slot}_destination"].normalize(dst)
        x[tiny_space.index[f"mod_{slot}_amount"]] = tiny_space[f"mod_{slot}_amount"].normalize(amount)

    put(1, 0, 0, 0.0)  # empty
    put(2, 1, 1, -0.5)  # lfo_1 -> osc_1_wave_frame
    preset = tiny_codec.to_preset(x)
    assert preset.modulations == [("lfo_1", "osc_1_wave_frame")]
    assert preset.settings["modulation_1_amount"] == pytest.approx(-0.5)
    put(1, 1, 1, 0.9)  # the same route twice: Vital holds it once
    assert tiny_codec.to_preset(x).modulations == [("lfo_1", "osc_1_wave_frame")]


def test_lfo_shape_is_written_and_read_back(tiny_space, tiny_codec):
    x = tiny_space.defaults()
    x[tiny_space.index["lfo_1_shape"]] = tiny_space["lfo_1_shape"].normalize(4)  # Square
    preset = tiny_codec.to_preset(x)
    assert preset.settings["lfos"][0]["name"] == "Square"
    assert tiny_codec.from_preset(preset)[tiny_space.index["lfo_1_shape"]] == 1.0


@pytest.mark.parametrize("space_fixture, seed", [("core", 0), ("core", 1), ("core", 2), ("studio", 0), ("studio", 1), ("studio", 2)])
def test_saved_vital_renders_like_the_vector(request, space_fixture, seed, tmp_path):
    """vector -> .vital -> vita.Synth.load_preset renders the same audio as the renderer (random phase off);
    studio presets carry bank wavetables and effects."""
    import vita

    space = request.getfixturevalue(f"{space_fixture}_space")
    codec = request.getfixturevalue(f"{space_fixture}_codec")
    cfg = RenderConfig(note_seconds=0.3, render_seconds=0.6, channels=2)
    renderer = Renderer(cfg)
    rng = np.random.default_rng(seed)
    for _ in range(100):  # the sampler is random in vita 0.1.0 (see render.py); skip presets that use it
        x = space.sample(rng)
        if x[space.index["sample_on"]] == 0:
            break
    preset = codec.to_preset(x)
    audio = renderer.render(preset).audio
    path = renderer.prepare(preset).save(tmp_path / "out.vital")
    synth = vita.Synth()
    assert synth.load_preset(str(path))
    reference = synth.render(cfg.midi_note, cfg.velocity, cfg.note_seconds, cfg.render_seconds)
    assert np.max(np.abs(audio - reference)) < 1e-5


def test_human_presets_keep_every_covered_parameter(core_space, core_codec, human_presets):
    for path in human_presets:
        original = Preset.load(path)
        x = core_codec.from_preset(original)
        rebuilt = PresetCodec(core_space, base=original).to_preset(x)
        covered = core_codec.covered(original)
        for name, ok in covered.items():
            if ok:
                # vectors are float32: relative precision ~1e-7 of the range
                assert rebuilt.settings[name] == pytest.approx(original.settings[name], rel=1e-6, abs=1e-5), (path.name, name)
        routes = [r for r in original.modulations if r[0] in core_space.modulation.sources and r[1] in core_space.modulation.destinations]
        assert rebuilt.modulations[: len(routes[:8])] == routes[:8], path.name
        np.testing.assert_allclose(core_codec.from_preset(rebuilt), x, atol=1e-6)


def test_wavetable_choice_is_written_into_the_preset(studio_space, studio_codec):
    bank = studio_space.wavetables
    x = studio_space.defaults()
    for osc, entry in ((1, 5), (2, 40), (3, len(bank) - 1)):
        x[studio_space.index[f"osc_{osc}_wavetable"]] = studio_space[f"osc_{osc}_wavetable"].normalize(entry)
    preset = studio_codec.to_preset(x)
    assert [t["name"] for t in preset.settings["wavetables"]] == [bank[5].name, bank[40].name, bank[-1].name]
    assert init_preset().settings["wavetables"][0]["name"] == "Init"  # the base is not edited
    reread = studio_codec.from_preset(Preset.from_json(preset.to_json()))
    assert [studio_space["osc_1_wavetable"].denormalize(reread[studio_space.index[f"osc_{o}_wavetable"]]) for o in (1, 2, 3)] == [5, 40, len(bank) - 1]


def test_refining_keeps_a_presets_own_wavetable_until_another_is_chosen(studio_space):
    from vital_gym.wavetables import Wavetable

    saw = np.linspace(1.0, -1.0, 2048, dtype=np.float32)
    own = Wavetable("mine", np.stack([saw, np.sign(saw)]))  # a table that is not in the bank
    base = init_preset().copy()
    base.settings["wavetables"][0] = own.to_vital()
    codec = PresetCodec(studio_space, base=base, keep_base=True)
    x = codec.from_preset(base)
    assert codec.to_preset(x).settings["wavetables"][0]["name"] == "mine"
    nearest = studio_space["osc_1_wavetable"].denormalize(x[studio_space.index["osc_1_wavetable"]])
    other = (int(nearest) + 1) % len(studio_space.wavetables)
    x[studio_space.index["osc_1_wavetable"]] = studio_space["osc_1_wavetable"].normalize(other)
    assert codec.to_preset(x).settings["wavetables"][0]["name"] == studio_space.wavetables[other].name
    plain = PresetCodec(studio_space, base=base)  # a dataset's codec: the vector says everything
    assert plain.to_preset(plain.from_preset(base)).settings["wavetables"][0]["name"] == studio_space.wavetables[int(nearest)].name


@pytest.mark.parametrize("space_name", ["core", "studio"])
def test_a_codec_that_keeps_its_base_writes_it_back_exactly_and_changes_only_what_moves(space_name):
    from pathlib import Path

    from vital_gym.params import ParameterSpace

    space = ParameterSpace.load(space_name)
    library = sorted((Path(__file__).parents[1] / "agents" / "library").rglob("*.vital"))
    changed = 0
    for path in library:
        base = Preset.load(path)
        codec = PresetCodec(space, base=base, keep_base=True)
        assert codec.to_preset(codec.base_vector).settings == base.settings, path.name  # custom LFOs, own tables, every route
        assert np.array_equal(codec.canonical(codec.base_vector), codec.base_vector)
        plain = PresetCodec(space, base=base)
        changed += plain.to_preset(plain.from_preset(base)).settings != base.settings
    assert changed > len(library) // 2  # without keep_base most human presets are not written back as they were
    base = Preset.load(library[0])
    codec = PresetCodec(space, base=base, keep_base=True)
    x = codec.base_vector.copy()
    i = space.index["filter_1_cutoff"]
    x[i] = 0.25 if x[i] != 0.25 else 0.75
    moved = codec.to_preset(x).settings
    assert moved["filter_1_cutoff"] == pytest.approx(space["filter_1_cutoff"].denormalize(x[i]))
    assert {k for k in base.settings if moved[k] != base.settings[k]} == {"filter_1_cutoff"}
    slot = space.index["mod_1_source"]  # a route changed: the slots are written as without keep_base
    x[slot] = space["mod_1_source"].normalize(0 if x[slot] else 1)
    assert codec.to_preset(x).settings["modulations"] == PresetCodec(space, base=base).to_preset(x).settings["modulations"]
