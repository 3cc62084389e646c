"""The preset library: indexed once and cached, searched by sound, and tried by the matcher."""

import warnings

import numpy as np
import pytest

from agents.cli import main as cli
from agents.library import INDEX_NOTES, PresetLibrary, shipped_library_dir
from agents.match import Matcher
from tests.agents.test_match import SR
from vital_gym.audio import write_wav
from vital_gym.features import MelConfig
from vital_gym.preset import Preset, init_preset
from vital_gym.render import RenderConfig, Renderer

RENDER = RenderConfig(note_seconds=0.25, render_seconds=0.5)
OBSERVATION = MelConfig(n_mels=32)

SOUNDS = {  # three presets that sound clearly apart
    "saw": {},
    "low": {"osc_1_transpose": -24.0, "filter_1_on": 1.0, "filter_1_cutoff": 50.0},
    "bright": {"osc_1_transpose": 12.0, "osc_1_unison_voices": 6.0, "osc_1_unison_detune": 8.0},
}


@pytest.fixture
def library_folder(tmp_path):
    folder = tmp_path / "presets"
    (folder / "sub").mkdir(parents=True)
    for k, (name, values) in enumerate(SOUNDS.items()):
        init_preset().with_values(values).save(folder / ("sub" if k else "") / f"{name}.vital")
    (folder / "broken.vital").write_text("{not json")
    init_preset().with_values({"osc_1_on": 0.0}).save(folder / "silent.vital")
    return folder


def index(folder, cache):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        library = PresetLibrary.index([folder], RENDER, OBSERVATION, cache_dir=cache)
    return library, [str(w.message) for w in caught]


def test_a_library_is_indexed_once_and_bad_files_are_named_and_left_out(library_folder, tmp_path, monkeypatch):
    library, warned = index(library_folder, tmp_path / "cache")
    assert sorted(e.name for e in library.entries) == ["bright", "low", "saw"]
    assert any("broken.vital left out: broken: not valid JSON" in w for w in warned)
    assert any("silent.vital left out" in w and "silent" in w for w in warned)
    assert all(e.features.shape[0] == len(INDEX_NOTES) for e in library.entries)
    # the second time nothing is rendered: every file, the silent one included, is read from the cache
    monkeypatch.setattr(Renderer, "render", lambda *a, **k: pytest.fail("rendered again"))
    again, _ = index(library_folder, tmp_path / "cache")
    for a, b in zip(library.entries, again.entries):
        np.testing.assert_array_equal(a.features, b.features)


def test_a_changed_or_added_file_is_the_only_one_indexed_again(library_folder, tmp_path, monkeypatch):
    index(library_folder, tmp_path / "cache")
    init_preset().with_values({"osc_1_transpose": 7.0}).save(library_folder / "saw.vital")  # changed
    init_preset().with_values({"osc_1_transpose": -7.0}).save(library_folder / "new.vital")  # added
    rendered = []
    original = Renderer.render
    monkeypatch.setattr(Renderer, "render", lambda self, preset, *a, **k: rendered.append(preset.name) or original(self, preset, *a, **k))
    library, _ = index(library_folder, tmp_path / "cache")
    assert sorted(set(rendered)) == ["new", "saw"] and len(library) == 4


@pytest.mark.parametrize("name", list(SOUNDS))
def test_the_shortlist_finds_the_preset_that_made_the_sound(library_folder, tmp_path, name):
    library, _ = index(library_folder, tmp_path / "cache")
    target = Renderer(RENDER).render(Preset.load(next(library_folder.rglob(f"{name}.vital"))), 62).audio  # between index notes
    assert library.shortlist(target, 62, k=1)[0].name == name
    assert [e.name for e in library.shortlist(target, 62, k=3)][0] == name and len(library.shortlist(target, 62, k=9)) == 3


def test_folders_that_hold_nothing_usable_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        PresetLibrary.index([tmp_path / "nope"], RENDER, OBSERVATION, cache_dir=tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .vital files"):
        PresetLibrary.index([tmp_path / "empty"], RENDER, OBSERVATION, cache_dir=tmp_path / "cache")


def library_for(checkpoint, folder, cache) -> PresetLibrary:
    """``folder`` indexed with the tiny model's own render and log-mel settings."""
    from agents.supervised.checkpoint import read_config

    meta = read_config(checkpoint)
    return PresetLibrary.index([folder], RenderConfig.from_dict(meta["render"]), MelConfig.from_dict(meta["observation"]), cache_dir=cache)


def test_the_matcher_keeps_a_library_preset_that_is_closer_and_writes_it_as_it_sounds(library_folder, tmp_path, tiny_checkpoint):
    import vita

    plain = Matcher(tiny_checkpoint)
    library = library_for(tiny_checkpoint, library_folder, tmp_path / "cache")
    matcher = Matcher(tiny_checkpoint, library=library, library_shortlist=2)
    target = plain.renderer.render(Preset.load(library_folder / "sub" / "bright.vital"), 60).audio
    without, with_library = plain.match(target, 60), matcher.match(target, 60)
    assert with_library.library_preset.name == "bright.vital" and with_library.distance < 1e-3 < without.distance
    assert len(with_library.library_distances) == 2 and "From the preset library" in with_library.description
    assert with_library.candidate_distances == without.candidate_distances  # the model's candidates are as before
    paths = matcher.write(with_library, tmp_path / "out.vital")
    again = Renderer(matcher.render_config).render(Preset.load(paths[0]), 60, with_library.velocity)
    assert np.abs(again.audio - with_library.render).max() < 1e-5 and vita.Synth().load_preset(str(paths[0]))
    # refining from it keeps what the space does not cover and is never worse
    refined = matcher.match(target, 60, refine_budget=4)
    assert refined.distance <= with_library.distance + 1e-9 and refined.library_preset.name == "bright.vital"
    # a library of other render settings is refused
    shorter = RenderConfig(note_seconds=0.2, render_seconds=0.3)
    assert shorter != matcher.render_config
    other = PresetLibrary.index([library_folder], shorter, OBSERVATION, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="other render settings"):
        Matcher(tiny_checkpoint, library=other)


def test_match_on_the_command_line_takes_user_folders(library_folder, tmp_path, tiny_checkpoint, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    write_wav(tmp_path / "t.wav", Renderer(RENDER).render(Preset.load(library_folder / "sub" / "low.vital"), 60).audio, SR)
    argv = ["match", str(tmp_path / "t.wav"), "--checkpoint", str(tiny_checkpoint), "--draws", "0", "--note", "60", "-q"]
    assert cli([*argv, "-o", str(tmp_path / "a.vital"), "--no-shipped-library", "--library", str(library_folder)]) == 0
    captured = capsys.readouterr()
    assert "library presets, closest" in captured.out
    assert "vital-gym: warning: preset library: " in captured.err and "broken.vital left out" in captured.err
    assert (tmp_path / "xdg" / "vital-gym" / "library").is_dir()  # the index is cached there
    assert cli([*argv, "-o", str(tmp_path / "b.vital"), "--library-shortlist", "0"]) == 0
    assert "library presets" not in capsys.readouterr().out
    assert cli([*argv, "-o", str(tmp_path / "c.vital"), "--no-shipped-library", "--library", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err and not (tmp_path / "c.vital").exists()


def test_the_shipped_library_holds_the_licensed_presets_and_their_notice():
    folder = shipped_library_dir()
    presets = sorted(folder.rglob("*.vital"))
    assert len(presets) == 87 and (folder / "NOTICE.md").is_file()
    assert (folder / "instatetragrammaton-patches" / "LICENSE.md").is_file() and (folder / "abstractionmage-vital-presets" / "LICENSE").is_file()
    assert all(Preset.load(p).settings for p in presets[::10])


def test_the_benchmark_method_matches_with_the_shipped_library_as_vital_gym_match_does(library_folder, tmp_path, tiny_checkpoint, tiny_codec, monkeypatch):
    import agents.library
    from agents.benchmark.methods import Supervised
    from agents.benchmark.testsets import TestItem

    monkeypatch.setattr(agents.library, "shipped_library_dir", lambda: library_folder)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixture's broken and silent files
        method = Supervised(tiny_checkpoint, tiny_codec, draws=1, library=True)
        refined = Supervised(tiny_checkpoint, tiny_codec, refine_budget=4, draws=1, library=True)
    assert method.name == "supervised+library" and refined.name == "supervised+library+refine"
    assert "presets nearest the target by sound of the 3 shipped" in method.description
    target = method.matcher.renderer.render(Preset.load(library_folder / "sub" / "low.vital"), 60).audio
    item = TestItem("human", "low", target, 60, 0.7)
    for m in (method, refined):
        predicted = m.predict(item).preset
        again = method.matcher.renderer.render(predicted, 60, 0.7).audio
        assert np.abs(again - target).max() < 1e-3  # the library preset itself (refinement found nothing closer)
