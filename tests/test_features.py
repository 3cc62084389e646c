import math

import numpy as np
import pytest
import torch

from vital_gym.features import AudioMAEFilterbank, LogMelSpectrogram, MelConfig, audiomae_normalised, kaldi_mel_banks, spectrogram

FRONTENDS = {"vital": MelConfig(), "audiomae": MelConfig(frontend="audiomae")}


@pytest.fixture(scope="module")
def mel():
    return LogMelSpectrogram(MelConfig(), 44100)


@pytest.fixture(scope="module")
def fbank():
    return AudioMAEFilterbank(FRONTENDS["audiomae"], 44100)


def _sine(freq, amplitude, seconds=1.0, rate=44100):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t))[None].astype(np.float32)


@pytest.mark.parametrize("frontend, frames", [("vital", 173), ("audiomae", 198)])
def test_shape_and_range(frontend, frames):
    config = FRONTENDS[frontend]
    out = spectrogram(config, 44100)(np.random.default_rng(0).standard_normal((2, 88200)).astype(np.float32) * 0.1)
    assert out.shape == (128, config.num_frames(88200, 44100)) == (128, frames)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("freq", [100, 1000, 5000])
@pytest.mark.parametrize("amplitude, db", [(1.0, 0.0), (0.01, -40.0)])
def test_a_sine_reads_its_level(mel, freq, amplitude, db):
    out = mel(_sine(freq, amplitude))[:, 5:-5]
    assert out.max() * 80 - 80 == pytest.approx(db, abs=1.5)


@pytest.mark.parametrize("frontend", list(FRONTENDS))
def test_silence_is_zero(frontend):
    assert spectrogram(FRONTENDS[frontend], 44100)(np.zeros((1, 44100), dtype=np.float32)).max() == 0.0


# Kaldi's filterbank of 0.5 * sin(2 pi f t) (1 s at 44.1 kHz, resampled to 16 kHz), frame 50: the band with
# the most energy, its log energy, and the mean over the bands, from torchaudio.compliance.kaldi.fbank with
# AudioMAE's arguments (torchaudio 2.11.0, run once; this project does not depend on torchaudio).
KALDI_REFERENCE = [(250, 13, 2.8058, -13.5805), (1000, 43, 5.6288, -13.2355), (5000, 106, 9.2404, -14.1765)]


@pytest.mark.parametrize("freq, band, peak, mean", KALDI_REFERENCE)
def test_audiomae_filterbank_is_kaldis(fbank, freq, band, peak, mean):
    log_fbank = fbank.log_fbank(_sine(freq, 0.5))
    assert log_fbank.shape == (98, 128)
    row = log_fbank[50]
    assert int(row.argmax()) == band
    assert row.max() == pytest.approx(peak, abs=1e-3) and row.mean() == pytest.approx(mean, abs=1e-3)


def test_audiomae_filterbank_is_a_power_spectrum_that_ignores_the_rate_and_offset(fbank):
    x = _sine(1000, 0.05)
    loud = fbank.log_fbank(10 * x)
    quiet = fbank.log_fbank(x)
    audible = quiet > -10  # well above the log floor
    assert np.allclose(loud[audible] - quiet[audible], math.log(100.0), atol=1e-4)  # 20 dB more power
    at_48k = AudioMAEFilterbank(FRONTENDS["audiomae"], 48000).log_fbank(_sine(1000, 0.05, rate=48000))
    assert np.abs(at_48k[5:-5, 20:100] - quiet[5:-5, 20:100]).max() < 0.05  # both are resampled to 16 kHz
    offset = fbank.log_fbank(x + 0.3)  # a DC offset is removed (the clip's mean, then each frame's)
    assert np.abs(offset[5:-5][audible[5:-5]] - quiet[5:-5][audible[5:-5]]).max() < 0.01


def test_kaldi_mel_bands():
    bands = kaldi_mel_banks(128, 512, 16000, 20.0)
    assert bands.shape == (128, 256) and bands.max() <= 1.0
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    edges = np.linspace(mel(20.0), mel(8000.0), 130)
    centre_hz = 700.0 * (math.exp(edges[64] / 1127.0) - 1.0)  # band 63's centre
    assert abs(int(bands[63].argmax()) * 16000 / 512 - centre_hz) <= 16000 / 512
    assert np.all(bands[:, 0] == 0)  # 0 Hz is below the first band's left edge (20 Hz)
    with pytest.raises(ValueError, match="Nyquist"):
        kaldi_mel_banks(128, 512, 16000, 20.0, 9000.0)


def test_audiomae_normalised_is_audiomaes_input(fbank):
    f = AudioMAEFilterbank
    assert torch.allclose(audiomae_normalised(torch.tensor([0.0, 1.0])), torch.tensor([f.Z_FLOOR, f.Z_TOP]))
    assert f.Z_PAD == pytest.approx((0.0 - -4.2677393) / (2 * 4.5689974))  # AudioMAE pads zeros, then normalises
    x = _sine(1000, 0.5)
    expected = (fbank.log_fbank(x) - f.NORM_MEAN) / (2 * f.NORM_STD)  # (frames, n_mels), as AudioMAE normalises
    got = audiomae_normalised(torch.from_numpy(fbank(x).T)).numpy()
    above = expected > f.Z_FLOOR
    assert np.abs(got[above] - expected[above]).max() < 1e-5


@pytest.mark.parametrize("frontend, unit_db", [("vital", (-80.0, 0.0)), ("audiomae", (-109.2, 20.9))])
def test_unit_db(frontend, unit_db):
    assert spectrogram(FRONTENDS[frontend], 44100).unit_db == pytest.approx(unit_db, abs=0.1)


def test_bad_config():
    with pytest.raises(ValueError, match="Nyquist"):
        LogMelSpectrogram(MelConfig(f_max=30000), 44100)
    with pytest.raises(ValueError, match="unknown observation settings"):
        MelConfig.from_dict({"bins": 64})
    with pytest.raises(ValueError, match="frontend='kaldi'"):
        MelConfig.from_dict({"frontend": "kaldi"})
    with pytest.raises(ValueError, match=r"\['hop_length'\] do not apply to the 'audiomae' frontend"):
        MelConfig.from_dict({"frontend": "audiomae", "hop_length": 256})
    with pytest.raises(ValueError, match="at least one 25 ms frame"):
        AudioMAEFilterbank(FRONTENDS["audiomae"], 44100)(np.zeros((1, 500), dtype=np.float32))
