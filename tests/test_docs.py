"""The docs' commands run as written: the README's quickstart for real, every other command line parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from agents.cli import build_parser
from agents.cli import main as cli
from vital_gym.audio import write_wav

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


GUIDES = [p for p in sorted((ROOT / "docs").glob("*.md")) if p.name not in ("experiments.md", "benchmarks.md")]  # those two: records


def blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def commands(text: str) -> list[list[str]]:
    """Each ``vital-gym`` line of ``text`` as an argument list, its comment left out."""
    return [shlex.split(line, comments=True)[1:] for line in map(str.strip, text.splitlines()) if line.startswith("vital-gym ")]


def test_the_readme_fits_its_budget():
    assert len(README.encode()) <= 15_000


def test_every_vital_gym_command_in_the_readme_parses():
    found = [argv for text in blocks("bash") for argv in commands(text)]
    assert len(found) >= 9
    parser = build_parser()
    for argv in found:
        parser.parse_args(argv)  # exits on an unknown flag or subcommand


@pytest.mark.parametrize("guide", [*GUIDES, ROOT / "agents" / "models" / "core_cpu" / "README.md"], ids=lambda p: p.name)
def test_every_vital_gym_command_in_a_guide_parses(guide):
    parser = build_parser()
    for text in blocks("(?:bash)?", guide.read_text()):
        for argv in commands(text):
            parser.parse_args(argv)


def test_the_quickstart_python_runs(tmp_path, monkeypatch):
    (snippet,) = blocks("python")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})
    assert (tmp_path / "random_guess.vital").is_file()


@pytest.mark.slow
def test_the_quickstart_matches_run(tmp_path, monkeypatch, capsys):
    """The three ``vital-gym`` lines of the quickstart, on a hum and a folder of two."""
    quickstart = next(text for text in blocks("bash") if "vital-gym match my_sound.wav" in text)
    monkeypatch.chdir(tmp_path)
    t = np.arange(88200) / 44100
    hum = lambda f: (0.3 * np.sin(2 * np.pi * f * t) * np.exp(-t))[None].astype(np.float32)  # noqa: E731
    write_wav("my_sound.wav", hum(220.0), 44100)
    Path("clips").mkdir()
    for f in (110.0, 330.0):
        write_wav(f"clips/hum{int(f)}.wav", hum(f), 44100)
    for argv in commands(quickstart):
        assert cli(argv) == 0, argv
    assert Path("matched.vital").is_file() and Path("matched/matches.csv").is_file()
    assert "Amplitude envelope" in capsys.readouterr().out
