import numpy as np
import pytest
import soundfile as sf

from vital_gym.audio import AudioFileError, estimate_midi_note, fit_length, load_audio, resample, write_wav


def _tone(seconds, rate, channels=1, freq=220.0):
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * freq * t)] * channels, axis=1).astype(np.float32)


@pytest.mark.parametrize("suffix, rate, channels", [(".wav", 16000, 1), (".flac", 48000, 2), (".ogg", 22050, 1)])
def test_audio_files_are_mixed_resampled_and_fitted(tmp_path, suffix, rate, channels):
    path = tmp_path / f"voice{suffix}"
    sf.write(str(path), _tone(0.3, rate, channels), rate)
    audio = load_audio(path, 44100, num_samples=22050, channels=1)
    assert audio.shape == (1, 22050) and audio.dtype == np.float32
    assert np.abs(audio[0, 100:13000]).max() == pytest.approx(0.3, abs=0.03)  # resampled tone keeps its level
    assert np.all(audio[0, 13300:] == 0)  # 0.3 s of sound, zero-padded to 0.5 s


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"RIFF this is not a wav file at all", "not a readable audio file")],
)
def test_bad_audio_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFileError, match=f"bad.wav.*{message}"):
        load_audio(path, 44100)


def test_overlong_audio_is_refused(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(str(path), _tone(3.0, 8000), 8000)
    with pytest.raises(AudioFileError, match="longer than"):
        load_audio(path, 44100, max_seconds=2.0)


def test_fit_length_trims_and_pads():
    x = np.ones((2, 10), dtype=np.float32)
    assert fit_length(x, 4).shape == (2, 4)
    padded = fit_length(x, 15)
    assert padded.shape == (2, 15) and np.all(padded[:, 10:] == 0)


def test_resample_keeps_a_tone_below_nyquist():
    tone = _tone(1.0, 48000).T
    out = resample(tone, 48000, 44100)
    assert out.shape == (1, 44100)
    spectrum = np.abs(np.fft.rfft(out[0]))
    assert np.argmax(spectrum) == 220  # 1 Hz bins: the 220 Hz tone stays at 220 Hz


def test_write_then_load_round_trip(tmp_path):
    audio = _tone(0.2, 44100).T
    path = write_wav(tmp_path / "x" / "tone.wav", audio, 44100)
    back = load_audio(path, 44100)
    np.testing.assert_allclose(back, audio, atol=1e-4)  # 16-bit PCM


def harmonic_tone(freq: float, seconds: float = 0.5, sr: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 7))
    return (0.3 * x / np.max(np.abs(x)))[None].astype(np.float32)


@pytest.mark.parametrize("freq, note", [(110.0, 45), (220.0, 57), (261.63, 60), (440.0, 69)])
def test_estimate_midi_note_of_a_harmonic_tone(freq, note):
    assert estimate_midi_note(harmonic_tone(freq), 44100) == note


def test_estimate_midi_note_of_silence_is_the_default():
    assert estimate_midi_note(np.zeros((1, 22050), np.float32), 44100, default=61) == 61
