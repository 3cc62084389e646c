import shutil

import pytest
import soundfile as sf

from agents.cli import main as cli


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_voice_set_is_72_trimmed_normalised_clips(tmp_path, capsys):
    assert cli(["dataset", "voice", "-o", str(tmp_path)]) == 0
    assert "wrote 72 files" in capsys.readouterr().out
    files = sorted(tmp_path.glob("*.wav"))
    assert len(files) == 72 and files[0].name == "a_en-f3_p20.wav"
    for f in files[::12]:
        audio, sr = sf.read(f, dtype="float32")
        assert sr == 44100 and audio.ndim == 1 and len(audio) > sr // 2
        assert abs(float(abs(audio).max()) - 0.5) < 0.01


def test_without_espeak_the_error_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert cli(["dataset", "voice", "-o", str(tmp_path / "voice")]) == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err and not (tmp_path / "voice").exists()
