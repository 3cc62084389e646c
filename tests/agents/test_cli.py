import json

import numpy as np
import pytest
import yaml

from agents.cli import main
from tests.agents.test_dataset import tiny_config


def test_generate_then_verify(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().to_dict()))
    out = tmp_path / "data"
    assert main(["dataset", "generate", "--config", str(config), "--n", "4", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert "4 samples in 2 shards" in capsys.readouterr().out
    assert main(["dataset", "verify", str(out)]) == 0
    shard = out / "shard-00001.npz"
    shard.write_bytes(shard.read_bytes()[:-10])
    assert main(["dataset", "verify", str(out)]) == 1
    assert "1 corrupt or missing" in capsys.readouterr().out


def test_generate_with_other_observation_settings(tmp_path, capsys):
    from agents.dataset import Manifest, read_shard

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().to_dict()))
    out = tmp_path / "data"

    def generate(out, *observation):
        return main(["dataset", "generate", "--config", str(config), "--n", "2", "--out", str(out), "--workers", "1", "--quiet", "--observation", *observation])

    assert generate(out, "frontend=audiomae", "n_mels=32") == 0
    assert Manifest.load(out).config["observation"] == {"frontend": "audiomae", "n_mels": 32}
    assert read_shard(out / "shard-00000.npz", ("logmel",))["logmel"].shape == (2, 32, 23)  # 0.25 s at 100 frames/s
    assert generate(tmp_path / "x", "frontend=audiomae", "hop_length=256") == 2
    assert "do not apply to the 'audiomae' frontend" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["dataset", "verify", str(tmp_path)]) == 2
    assert "not a vital-gym dataset folder" in capsys.readouterr().err


def test_describe_a_preset(tmp_path, capsys, human_presets):
    from vital_gym.preset import init_preset

    assert main(["describe", str(human_presets[0])]) == 0
    out = capsys.readouterr().out
    assert "Amplitude envelope" in out and "in the terms of space 'core'" in out and "clipped" not in out
    preset = init_preset().with_values({"osc_1_transpose": 36.0})  # Vital allows +-48; the core space +-24
    path = preset.save(tmp_path / "high.vital")
    assert main(["describe", str(path)]) == 0
    out = capsys.readouterr().out
    assert "transposed +24 semitones" in out and "osc_1_transpose clipped to the space's ranges" in out
    assert "0 other settings differ from the init preset" in out


def test_describe_refuses_what_it_cannot_read(tmp_path, capsys):
    bad = tmp_path / "bad.vital"
    bad.write_text("{not json")
    assert main(["describe", str(bad)]) == 2
    assert f"{bad}: not valid JSON" in capsys.readouterr().err
    assert main(["describe", str(tmp_path / "missing.vital")]) == 2
    assert "no such preset file" in capsys.readouterr().err
    assert main(["describe", str(bad), "--space", "nospace"]) == 2
    assert "parameter space 'nospace' not found" in capsys.readouterr().err


def subcommands(parser=None, prefix=()) -> list[tuple[str, ...]]:
    """Every command path of the ``vital-gym`` parser, e.g. ``("dataset", "generate")``."""
    import argparse

    from agents.cli import build_parser

    parser = parser or build_parser()
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths += subcommands(sub, (*prefix, name))
    return paths


def test_every_subcommand_has_help(capsys):
    paths = subcommands()
    assert {("match",), ("train",), ("critic", "data"), ("critic", "train"), ("ppo",), ("dataset", "select"), ("compare",)} <= set(paths)
    for path in [(), *paths]:
        with pytest.raises(SystemExit) as exit_:
            main([*path, "--help"])
        assert exit_.value.code == 0
        assert "usage: vital-gym" in capsys.readouterr().out


@pytest.mark.parametrize("path", [("dataset", "generate"), ("match",), ("train",), ("critic", "data"), ("ppo",), ("benchmark",), ("curves",)])
def test_outputs_are_named_by_the_same_flag_everywhere(path):
    from agents.cli import build_parser

    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction)).choices[name]
    flags = {s for a in parser._actions for s in a.option_strings}
    assert {"-o", "--out", "-q"} <= flags and "--output" not in flags and "--dataset-config" not in flags


def test_a_config_is_found_by_name_and_a_users_folder_comes_first(tmp_path, monkeypatch, capsys):
    from vital_gym.resources import config_names, find_config

    assert find_config("params", "core").name == "core.yaml" and find_config("rl", "ppo").name == "ppo.yaml"
    assert "supervised_cpu" in config_names("train")
    with pytest.raises(FileNotFoundError, match=r"parameter space 'nope' not found .*available: \['core', 'full', 'studio'\]"):
        find_config("params", "nope")
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_config("params", str(tmp_path / "missing.yaml"))
    mine = tmp_path / "mine"
    (mine / "dataset").mkdir(parents=True)
    (mine / "dataset" / "core.yaml").write_text(yaml.safe_dump(tiny_config().to_dict()))
    (mine / "dataset" / "small.yaml").write_text(yaml.safe_dump(tiny_config().to_dict()))
    monkeypatch.setenv("VITAL_GYM_CONFIG_DIR", str(mine))
    assert find_config("dataset", "core") == mine / "dataset" / "core.yaml"  # the user's replaces the shipped one
    assert config_names("dataset") == ["core", "small", "studio"] and find_config("params", "core").parent.parent != mine
    assert main(["dataset", "generate", "--config", "small", "--n", "2", "-o", str(tmp_path / "data"), "--workers", "1", "-q"]) == 0
    assert "2 samples" in capsys.readouterr().out


def test_render_writes_what_the_renderer_renders(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from vital_gym.preset import Preset, init_preset
    from vital_gym.render import RenderConfig, Renderer

    preset = init_preset().save(tmp_path / "init.vital")
    out = tmp_path / "init.wav"
    assert main(["render", str(preset), "-o", str(out), "--note", "48", "--seconds", "1", "--note-seconds", "0.5"]) == 0
    assert "note 48, 1.0 s, RMS" in capsys.readouterr().out
    audio, rate = sf.read(out, dtype="float32", always_2d=True)
    expected = Renderer(RenderConfig(midi_note=48, note_seconds=0.5, render_seconds=1.0, channels=2)).render(Preset.load(preset)).audio
    assert rate == 44100 and audio.T.shape == expected.shape
    assert np.abs(audio.T - expected).max() < 1e-4  # 16-bit rounding
    assert main(["render", str(preset), "-o", str(tmp_path / "x.mp3")]) == 2
    assert main(["render", str(tmp_path / "missing.vital"), "-o", str(tmp_path / "y.wav")]) == 2
    assert "missing.vital" in capsys.readouterr().err and not (tmp_path / "y.wav").exists()


def test_wavetables_build_and_list(tmp_path, capsys):
    from vital_gym.wavetables import Wavetable, WavetableBank, generated_wavetables

    saw = Wavetable("mine", np.linspace(1, -1, 2048, dtype=np.float32)[None])
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "mine.vitaltable").write_text(json.dumps(saw.to_vital()))
    (tmp_path / "tables" / "broken.vitaltable").write_text("{")
    out = tmp_path / "bank.npz"
    assert main(["wavetables", "build", str(tmp_path / "tables"), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "broken.vitaltable" in captured.err and f"{len(generated_wavetables()) + 1} tables" in captured.out
    assert WavetableBank.load(out).names[-1] == "mine"
    assert main(["wavetables", "build", str(tmp_path / "tables"), "-o", str(out)]) == 2  # never over a file unasked
    assert "exists" in capsys.readouterr().err
    assert main(["wavetables", "list", str(out)]) == 0
    assert "mine" in capsys.readouterr().out
