from pathlib import Path

import numpy as np
import pytest
import torch

from agents.cli import main as cli
from agents.match import Matcher
from agents.supervised.checkpoint import save_checkpoint
from agents.supervised.model import ModelConfig, SoundMatcher
from tests.agents.conftest import TINY_MODEL, with_hypotheses
from vital_gym.audio import write_wav
from vital_gym.preset import Preset
from vital_gym.render import Renderer

SR = 44100


def hum(seconds: float = 0.25, freq: float = 220.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(4 * np.pi * freq * t))[None].astype(np.float32)


def test_match_writes_a_preset_that_vita_loads_its_render_and_a_comparison(tmp_path, tiny_checkpoint):
    matcher = Matcher(tiny_checkpoint)
    write_wav(tmp_path / "target.wav", hum(), SR)
    target = matcher.load_target(tmp_path / "target.wav")
    assert target.shape == (1, matcher.render_config.num_samples)
    result = matcher.match(target)
    assert result.midi_note == 57  # 220 Hz, estimated
    paths = matcher.write(result, tmp_path / "out.vital")
    assert [p.name for p in paths] == ["out.vital", "out.wav", "out.png"]
    # The file renders, on a new synth, exactly what match rendered and scored.
    again = Renderer(matcher.render_config).render(Preset.load(tmp_path / "out.vital"), result.midi_note, result.velocity)
    assert np.max(np.abs(again.audio - result.render)) < 1e-5
    import vita

    assert vita.Synth().load_preset(str(tmp_path / "out.vital"))
    assert "Oscillator" in result.description or "silent" in result.description
    assert np.isfinite(result.distance) and result.seconds > 0


def test_refinement_is_never_worse_than_the_prediction(tiny_checkpoint):
    matcher = Matcher(tiny_checkpoint)
    result = matcher.match(hum(), midi_note=57, refine_budget=8)
    assert result.refined is not None and result.refined.renders <= 8
    assert result.distance <= result.predicted_distance


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such audio file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"RIFF....WAVEfmt garbage"), "not a readable audio file"),
        (lambda p: write_wav(p, np.zeros((1, SR), np.float32), SR), "silent"),
        (lambda p: write_wav(p, hum(61.0, sr=8000), 8000), "longer than the 60 s limit"),
    ],
    ids=["missing", "empty", "corrupt", "silent", "too-long"],
)
def test_bad_targets_get_a_clear_error(tmp_path, tiny_checkpoint, capsys, make, message):
    path = tmp_path / "target.wav"
    make(path)
    assert cli(["match", str(path), "-o", str(tmp_path / "out.vital"), "--checkpoint", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert message in err and "target.wav" in err
    assert not (tmp_path / "out.vital").exists()


def test_a_checkpoint_of_another_space_or_none_is_refused(tmp_path, core_space, capsys):
    write_wav(tmp_path / "t.wav", hum(), SR)
    assert cli(["match", str(tmp_path / "t.wav"), "-o", str(tmp_path / "o.vital"), "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no model at" in capsys.readouterr().err
    (tmp_path / "notckpt").mkdir()
    assert cli(["match", str(tmp_path / "t.wav"), "-o", str(tmp_path / "o.vital"), "--checkpoint", str(tmp_path / "notckpt")]) == 2
    assert "not a checkpoint" in capsys.readouterr().err


def test_cli_match_prints_distance_and_description(tmp_path, tiny_checkpoint, capsys):
    write_wav(tmp_path / "t.wav", hum(), SR)
    assert cli(["match", str(tmp_path / "t.wav"), "-o", str(tmp_path / "o.vital"), "--checkpoint", str(tiny_checkpoint), "--refine", "4"]) == 0
    out = capsys.readouterr().out
    assert "spectral distance" in out and "after refinement" in out and "Modulation" in out
    assert cli(["match", str(tmp_path / "t.wav"), "-o", str(tmp_path / "p.vital"), "--checkpoint", str(tiny_checkpoint), "--workers", "0"]) == 2
    assert "render_workers=0: need at least one" in capsys.readouterr().err and not (tmp_path / "p.vital").exists()


def test_a_folder_is_matched_file_by_file_and_a_bad_file_does_not_stop_the_rest(tmp_path, tiny_checkpoint, capsys):
    """10 wavs, 2 of them bad: 8 matches, matches.csv with a row per file, two clear errors, exit status 0."""
    import csv

    clips = tmp_path / "clips"
    (clips / "more").mkdir(parents=True)
    for k in range(8):
        write_wav(clips / ("more" if k % 2 else "") / f"hum{k}.wav", hum(freq=110.0 * (1 + k / 8)), SR)
    (clips / "empty.wav").write_bytes(b"")
    write_wav(clips / "silent.wav", np.zeros((1, SR // 4), np.float32), SR)
    out = tmp_path / "matches"
    assert cli(["match", str(clips), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--draws", "0", "-q"]) == 0
    captured = capsys.readouterr()
    assert "matched 8 of 10 files" in captured.out
    assert "empty.wav: the file is empty" in captured.err and "silent.wav: silent" in captured.err
    with open(out / "matches.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [Path(r["file"]).relative_to(clips).as_posix() for r in rows] == [  # sorted by path, subfolders included
        "empty.wav",
        "hum0.wav",
        "hum2.wav",
        "hum4.wav",
        "hum6.wav",
        "more/hum1.wav",
        "more/hum3.wav",
        "more/hum5.wav",
        "more/hum7.wav",
        "silent.wav",
    ]
    matched = [r for r in rows if not r["error"]]
    assert len(matched) == 8 and all(float(r["distance"]) > 0 and int(r["note"]) > 0 for r in matched)
    for r in matched:  # each output opens and renders the sound that was scored
        assert (out / r["preset"]).is_file() and (out / r["render"]).is_file() and (out / r["image"]).is_file()
    assert sorted(p.name for p in out.glob("*.vital")) == [f"hum{k}.vital" for k in range(8)]
    # every file failing is the only failure of the whole command
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.wav").write_bytes(b"")
    (bad / "b.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    assert cli(["match", str(bad), "-o", str(tmp_path / "none"), "--checkpoint", str(tiny_checkpoint), "-q"]) == 2
    assert "matched 0 of 2 files" in capsys.readouterr().out


def test_several_targets_take_an_output_folder_and_one_target_a_vital_file(tmp_path, tiny_checkpoint, capsys):
    write_wav(tmp_path / "a.wav", hum(), SR)
    (tmp_path / "sub").mkdir()
    write_wav(tmp_path / "sub" / "a.wav", hum(freq=330.0), SR)
    ckpt = ["--checkpoint", str(tiny_checkpoint), "--draws", "0", "-q"]
    assert cli(["match", str(tmp_path / "a.wav"), str(tmp_path / "sub" / "a.wav"), "-o", str(tmp_path / "out"), *ckpt]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.vital")) == ["a-2.vital", "a.vital"]  # the same name twice
    assert cli(["match", str(tmp_path / "a.wav"), "-o", str(tmp_path / "one"), *ckpt]) == 2
    assert "as a .vital file" in capsys.readouterr().err
    assert cli(["match", str(tmp_path / "sub"), "-o", str(tmp_path / "x.vital"), *ckpt]) == 2
    assert "into a folder" in capsys.readouterr().err and not (tmp_path / "x.vital").exists()
    (tmp_path / "nothing").mkdir()
    assert cli(["match", str(tmp_path / "nothing"), "-o", str(tmp_path / "y"), *ckpt]) == 2
    assert "a folder with no" in capsys.readouterr().err


def test_a_match_never_overwrites_its_target(tmp_path, tiny_checkpoint, capsys):
    """clip.wav matched to clip.vital beside it would get its render written over it: refused up front."""
    write_wav(tmp_path / "a.wav", hum(), SR)
    before = (tmp_path / "a.wav").read_bytes()
    ckpt = ["--checkpoint", str(tiny_checkpoint), "--draws", "0", "-q"]
    assert cli(["match", str(tmp_path / "a.wav"), "-o", str(tmp_path / "a.vital"), *ckpt]) == 2
    assert "would overwrite this target" in capsys.readouterr().err
    assert cli(["match", str(tmp_path), "-o", str(tmp_path), *ckpt]) == 2  # a folder matched into itself
    assert "would overwrite this target" in capsys.readouterr().err
    assert (tmp_path / "a.wav").read_bytes() == before and not list(tmp_path.glob("*.vital"))


def test_the_shipped_model_is_the_default_and_fits_the_core_space(tmp_path, capsys):
    """The committed checkpoint loads for today's core space (a space change would refuse it) and matches."""
    from agents.match import DEFAULT_MODEL

    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL.iterdir()}
    assert {"model.safetensors", "config.json", "README.md"} <= set(files)
    assert files["model.safetensors"] <= 30 * 2**20
    write_wav(tmp_path / "t.wav", hum(0.5), SR)
    assert cli(["match", str(tmp_path / "t.wav"), "-o", str(tmp_path / "o.vital")]) == 0
    assert "spectral distance" in capsys.readouterr().out
    assert Preset.load(tmp_path / "o.vital").settings


@pytest.fixture(scope="module")
def k3_checkpoint(tmp_path_factory, tiny_checkpoint, tiny_space):
    """The tiny model widened to 3 hypotheses (perturbed copies of its one)."""
    import json

    from agents.supervised.checkpoint import CONFIG_FILE, init_weights

    torch.manual_seed(0)
    model = SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 3))
    init_weights(model, tiny_checkpoint)
    meta = json.loads((tiny_checkpoint / CONFIG_FILE).read_text())
    return save_checkpoint(tmp_path_factory.mktemp("k3") / "k3", model, meta["space"], extra={k: meta[k] for k in ("render", "observation")})


def test_a_model_with_hypotheses_renders_them_all_and_keeps_the_closest(k3_checkpoint, tiny_space):
    matcher = Matcher(k3_checkpoint)
    candidates = matcher.candidates(hum(), 57)
    assert candidates.shape == (3, len(tiny_space.parameters))
    assert np.array_equal(matcher.predict(hum(), 57), candidates[0])
    result = matcher.match(hum(), midi_note=57, draws=0)
    assert len(result.candidate_distances) == 3
    assert result.predicted_distance == result.distance == pytest.approx(min(result.candidate_distances))
    assert np.array_equal(result.x, candidates[int(np.argmin(result.candidate_distances))])
    top = matcher.match(hum(), midi_note=57, select=False)
    assert len(top.candidate_distances) == 1 and np.array_equal(top.x, candidates[0])
    assert top.distance >= result.distance


def test_drawn_candidates_follow_their_hypotheses_and_the_closest_of_all_is_kept(k3_checkpoint, tiny_space):
    from vital_gym.params import Kind

    matcher = Matcher(k3_checkpoint)
    hypotheses = matcher.candidates(hum(), 57)
    xs = matcher.candidates(hum(), 57, draws=2, seed=1)
    assert xs.shape == (9, len(tiny_space.parameters))
    assert np.array_equal(xs[:3], hypotheses)  # the hypotheses first, unchanged
    assert np.array_equal(xs, matcher.candidates(hum(), 57, draws=2, seed=1))  # seeded
    assert not np.array_equal(xs, matcher.candidates(hum(), 57, draws=2, seed=2))
    discrete = [i for i, p in enumerate(tiny_space.parameters) if p.kind in (Kind.CATEGORICAL, Kind.TOGGLE)]
    assert not np.array_equal(xs[3:, discrete], np.tile(hypotheses[:, discrete], (2, 1)))  # choices were drawn
    result = matcher.match(hum(), midi_note=57, draws=2, seed=1)
    assert len(result.candidate_distances) == 9
    assert np.array_equal(result.x, xs[int(np.argmin(result.candidate_distances))])
    exact = Matcher(k3_checkpoint, screen=False).match(hum(), midi_note=57, draws=2, seed=1)
    assert exact.distance == pytest.approx(min(exact.candidate_distances))
    with pytest.raises(ValueError, match="draws=-1"):
        matcher.candidates(hum(), 57, draws=-1)


def test_render_threads_score_candidates_as_one_renderer_does(k3_checkpoint):
    xs = Matcher(k3_checkpoint).candidates(hum(), 57, draws=1)
    one, two = (Matcher(k3_checkpoint, render_workers=w) for w in (1, 2))
    assert len(two.candidate_renderers) == 2
    assert one.render_closest(hum(), xs, 57, 0.7)[3] == two.render_closest(hum(), xs, 57, 0.7)[3]


def test_screened_candidates_give_an_exact_render_of_the_closest(k3_checkpoint):
    """Candidates are ranked on screening renders; the preset, render and distance returned are exact."""
    from vital_gym.render import Renderer
    from vital_gym.rewards import MultiResolutionSTFTDistance

    matcher = Matcher(k3_checkpoint)
    assert {r.config.reset for r in matcher.candidate_renderers} == {"settle"} and matcher.renderer.config.reset == "auto"
    result = matcher.match(hum(), midi_note=57, draws=2, seed=1)
    alone = Renderer(matcher.render_config).render(matcher.codec.to_preset(result.x), 57, 0.7)
    np.testing.assert_array_equal(result.render, alone.audio)
    assert result.preset.settings["oversampling"] == alone.preset.settings["oversampling"]  # the model's, not screening's
    assert result.distance == pytest.approx(MultiResolutionSTFTDistance().distance(alone.audio, result.target))


def test_a_model_with_spread_draws_continuous_values_about_its_hypotheses(tmp_path, tiny_checkpoint, tiny_space):
    import json

    from agents.supervised.checkpoint import CONFIG_FILE, init_weights
    from vital_gym.params import Kind

    torch.manual_seed(0)
    config = ModelConfig.from_dict({**TINY_MODEL, "decoder": {**TINY_MODEL["decoder"], "hypotheses": 2, "spread": True}})
    model = SoundMatcher(tiny_space, config)
    init_weights(model, tiny_checkpoint)  # a checkpoint without spread heads: they start at their small default
    for head in model.decoder.spread_heads:
        torch.nn.init.constant_(head.bias, float(np.log(0.2)))
    meta = json.loads((tiny_checkpoint / CONFIG_FILE).read_text())
    folder = save_checkpoint(tmp_path / "spread", model, meta["space"], extra={k: meta[k] for k in ("render", "observation")})
    matcher = Matcher(folder)
    xs = matcher.candidates(hum(), 57, draws=3)
    continuous = [i for i, p in enumerate(tiny_space.parameters) if p.kind is Kind.CONTINUOUS]
    moved = np.abs(xs[2:, continuous] - np.tile(xs[:2, continuous], (3, 1)))
    assert moved.max() > 0.05  # draws sit about their hypothesis, not on it
    assert len(matcher.match(hum(), midi_note=57, draws=3).candidate_distances) == 8


def test_a_switch_conditioned_model_fits_each_candidates_settings_to_its_switches(tmp_path, tiny_checkpoint, tiny_space):
    """Each candidate is the decoder's answer given that candidate's switches: the hypothesis' own, then drawn ones."""
    import json

    from agents.supervised.checkpoint import CONFIG_FILE, init_weights

    torch.manual_seed(0)
    config = ModelConfig.from_dict({**TINY_MODEL, "decoder": {**TINY_MODEL["decoder"], "hypotheses": 3, "switch_conditioning": True}})
    model = SoundMatcher(tiny_space, config)
    init_weights(model, tiny_checkpoint)
    with torch.no_grad():
        model.decoder.switch_proj.weight.normal_(std=3.0)  # a map that matters
    meta = json.loads((tiny_checkpoint / CONFIG_FILE).read_text())
    matcher = Matcher(save_checkpoint(tmp_path / "switches", model, meta["space"], extra={k: meta[k] for k in ("render", "observation")}))
    xs = matcher.candidates(hum(), 57, draws=4, seed=3)
    assert xs.shape == (15, len(tiny_space.parameters))
    assert np.array_equal(xs, matcher.candidates(hum(), 57, draws=4, seed=3))  # seeded
    assert np.array_equal(xs[:3], matcher.candidates(hum(), 57))  # the hypotheses first, as without draws
    # Round 0: each hypothesis asked again given its own switches.
    logmel = torch.from_numpy(np.round(matcher.mel(hum()) * 255.0) / 255.0).float()[None, None]
    note = torch.tensor([57.0])
    with torch.no_grad():
        z, scores = matcher.model.hypotheses(logmel, note)
        order = scores[0].argsort(descending=True)
        own = model.decoder.switches_of(z)
        given, _ = matcher.model.hypotheses(logmel, note, own)
    expected = np.stack([matcher.codec.canonical(tiny_space.action_to_vector(a)) for a in SoundMatcher.actions(given[0, order]).numpy()])
    np.testing.assert_allclose(xs[:3], expected, atol=1e-6)
    plain = np.stack([matcher.codec.canonical(tiny_space.action_to_vector(a)) for a in SoundMatcher.actions(z[0, order]).numpy()])
    switches = [tiny_space.index["osc_1_on"], tiny_space.index["filter_1_on"]]
    np.testing.assert_array_equal(xs[:3, switches], plain[:, switches])  # the same switches ...
    assert not np.allclose(xs[:3], plain)  # ... with other settings given them
    # Drawn rounds: the same settings for the same switches, up to the draws of the other choices.
    assert len({tuple(row) for row in xs[3:, switches]}) > 1
    assert len(matcher.match(hum(), midi_note=57, draws=4, seed=3).candidate_distances) == 15


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_shipped_matcher_chooses_on_a_gpu_what_it_chooses_on_the_cpu():
    """The model and its critic on CUDA give the CPU's candidates (the draws stay on the CPU's generator) on
    development targets, bar a rare rank that a rounding difference tips over, and the same rendered choice."""
    from agents.benchmark.testsets import DEV_SEED, synthetic_set
    from agents.dataset.generate import DatasetConfig
    from vital_gym.resources import find_config

    cpu, gpu = Matcher(device="cpu"), Matcher(device="cuda")
    items = synthetic_set(cpu.space, DatasetConfig.from_yaml(find_config("dataset", "core")), 8, seed=DEV_SEED)
    agree = same_choice = 0
    for k, it in enumerate(items):
        a = cpu.candidates(it.audio, it.midi_note, 2, seed=k)
        b = gpu.candidates(it.audio, it.midi_note, 2, seed=k)
        agree += bool(np.all(np.abs(a - b) <= 1e-4))
        xa, *_ = cpu.render_closest(it.audio, a, it.midi_note, it.velocity)
        xb, *_ = gpu.render_closest(it.audio, b, it.midi_note, it.velocity)
        same_choice += bool(np.abs(xa - xb).max() <= 1e-4)
    assert agree >= 7 and same_choice >= 7


def test_fast_renders_the_hypotheses_alone_unless_draws_are_given(tmp_path, k3_checkpoint, capsys):
    write_wav(tmp_path / "t.wav", hum(), SR)
    base = ["match", str(tmp_path / "t.wav"), "--checkpoint", str(k3_checkpoint), "--library-shortlist", "0", "-q"]
    assert cli([*base, "-o", str(tmp_path / "a.vital")]) == 0
    assert "closest of 9 candidates" in capsys.readouterr().out  # 3 hypotheses and 2 draws of each
    assert cli([*base, "-o", str(tmp_path / "b.vital"), "--fast"]) == 0
    assert "closest of 3 candidates" in capsys.readouterr().out
    assert cli([*base, "-o", str(tmp_path / "c.vital"), "--fast", "--draws", "1"]) == 0
    assert "closest of 6 candidates" in capsys.readouterr().out


def test_a_studio_match_is_saved_as_it_sounds_with_bank_tables_effects_and_refinement(tmp_path, tiny_studio, studio_space):
    """Whatever the matcher keeps (the model's candidate, a training sample, a library preset with effects,
    each refined), the saved .vital loads in Vita and renders the sound the matcher scored."""
    import vita

    from agents.library import PresetLibrary
    from agents.neighbours import DatasetNeighbours
    from agents.supervised.checkpoint import load_model, read_config
    from vital_gym.features import MelConfig
    from vital_gym.preset import PresetCodec
    from vital_gym.render import RenderConfig

    dataset, checkpoint = tiny_studio
    model, space, meta = load_model(checkpoint)
    render, observation = RenderConfig.from_dict(read_config(checkpoint)["render"]), MelConfig.from_dict(meta["observation"])
    x = studio_space.defaults()
    for name, value in (("chorus_on", 1.0), ("reverb_on", 1.0), ("delay_on", 1.0), ("osc_1_wavetable", 0.5)):
        x[studio_space.index[name]] = value
    with_effects = PresetCodec(studio_space).to_preset(x, name="effects")
    (tmp_path / "library").mkdir()
    with_effects.save(tmp_path / "library" / "effects.vital")
    library = PresetLibrary.index([tmp_path / "library"], render, observation, cache_dir=tmp_path / "cache")
    neighbours = DatasetNeighbours.build(dataset, model, space, observation)
    bank = {t.name for t in studio_space.wavetables}
    target = Renderer(render).render(with_effects, 60).audio
    matchers = {
        "model": Matcher(checkpoint, neighbours=False),
        "data": Matcher(checkpoint, neighbours=neighbours, neighbour_count=2),
        "library": Matcher(checkpoint, neighbours=neighbours, library=library, library_shortlist=1),
    }
    for label, matcher in matchers.items():
        for budget in (0, 4):
            result = matcher.match(target, 60, draws=1, refine_budget=budget)
            paths = matcher.write(result, tmp_path / f"{label}-{budget}.vital")
            saved = Preset.load(paths[0])
            assert vita.Synth().load_preset(str(paths[0])), label
            again = Renderer(matcher.render_config).render(saved, 60, result.velocity).audio
            assert np.abs(again - result.render).max() < 1e-4, (label, budget)
            assert {t["name"] for t in saved.settings["wavetables"]} <= bank, label
    assert result.library_preset is not None and result.distance < 1e-3  # the library preset itself, effects and all
    assert all(saved.settings[f"{e}_on"] == 1.0 for e in ("chorus", "reverb", "delay"))
