import json

import pytest

from agents.cli import main as cli


def write_run(folder, rewards):
    folder.mkdir()
    curve = [{"timesteps": 512 * k, "mean_reward": r, "spectral_distance": -r} for k, r in enumerate(rewards)]
    history = {"before": curve[0], "after": curve[-1], "best_mean_reward": max(rewards), "curve": curve}
    (folder / "eval_history.json").write_text(json.dumps(history))


def test_curves_png_and_table(tmp_path, capsys):
    write_run(tmp_path / "warm", [-1.0, -0.8, -0.9])
    write_run(tmp_path / "scratch", [-3.0, -2.5, -2.0])
    out = tmp_path / "img" / "curves.png"
    assert cli(["curves", "--run", f"warm={tmp_path / 'warm'}", "--run", f"scratch={tmp_path / 'scratch'}", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "| warm | 1 | 1024 | -1.0000 | -0.8000 (at 512) | -0.9000 |" in printed
    assert "| scratch | 1 | 1024 | -3.0000 | -2.0000 (at 1024) | -2.0000 |" in printed


def test_runs_of_one_label_are_seeds_drawn_as_mean_and_range(tmp_path, capsys):
    from agents.ppo.curves import curves, read_history

    write_run(tmp_path / "s0", [-1.0, -0.8, -0.6])
    write_run(tmp_path / "s1", [-1.0, -0.6, -0.4, -0.3])  # evaluated once more: only the common steps are drawn
    out = tmp_path / "seeds.png"
    assert cli(["curves", "--run", f"ppo={tmp_path / 's0'}", "--run", f"ppo={tmp_path / 's1'}", "--out", str(out)]) == 0
    assert "| ppo | 2 | 1536 | -1.0000 ± 0.0000 | -0.4500 ± 0.2121 | -0.4500 ± 0.2121 |" in capsys.readouterr().out
    steps, values = curves([read_history(tmp_path / "s0"), read_history(tmp_path / "s1")], "mean_reward")
    assert steps.tolist() == [0, 512, 1024] and values.shape == (2, 3)


@pytest.mark.parametrize("run", ["warm", "warm=", "=folder"])
def test_a_malformed_run_is_refused(run, tmp_path, capsys):
    assert cli(["curves", "--run", run, "--out", str(tmp_path / "x.png")]) == 2
    assert "LABEL=FOLDER" in capsys.readouterr().err


def test_an_unfinished_run_names_its_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli(["curves", "--run", f"x={tmp_path / 'empty'}", "--out", str(tmp_path / "x.png")]) == 2
    assert "eval_history.json" in capsys.readouterr().err
