import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_voice_set.py"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_voice_set_is_72_trimmed_normalised_clips(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, capture_output=True)
    files = sorted(tmp_path.glob("*.wav"))
    assert len(files) == 72 and files[0].name == "a_en-f3_p20.wav"
    for f in files[:: 12]:
        audio, sr = sf.read(f, dtype="float32")
        assert sr == 44100 and audio.ndim == 1 and len(audio) > sr // 2
        assert abs(float(abs(audio).max()) - 0.5) < 0.01
