import numpy as np
import pytest

from vital_gym.features import LogMelSpectrogram, MelConfig


@pytest.fixture(scope="module")
def mel():
    return LogMelSpectrogram(MelConfig(), 44100)


def _sine(freq, amplitude, seconds=1.0, rate=44100):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t))[None].astype(np.float32)


def test_shape_and_range(mel):
    out = mel(np.random.default_rng(0).standard_normal((2, 88200)).astype(np.float32) * 0.1)
    assert out.shape == (128, MelConfig().num_frames(88200)) == (128, 173)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("freq", [100, 1000, 5000])
@pytest.mark.parametrize("amplitude, db", [(1.0, 0.0), (0.01, -40.0)])
def test_a_sine_reads_its_level(mel, freq, amplitude, db):
    out = mel(_sine(freq, amplitude))[:, 5:-5]
    assert out.max() * 80 - 80 == pytest.approx(db, abs=1.5)


def test_silence_is_zero(mel):
    assert mel(np.zeros((1, 44100), dtype=np.float32)).max() == 0.0


def test_bad_config():
    with pytest.raises(ValueError, match="Nyquist"):
        LogMelSpectrogram(MelConfig(f_max=30000), 44100)
    with pytest.raises(ValueError, match="unknown observation settings"):
        MelConfig.from_dict({"bins": 64})
