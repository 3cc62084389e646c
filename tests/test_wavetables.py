import base64
import json

import numpy as np
import pytest

from vital_gym.params import ParameterSpace
from vital_gym.preset import init_preset
from vital_gym.wavetables import (
    FRAME_SIZE,
    MAX_KEYFRAMES,
    Wavetable,
    WavetableBank,
    WavetableError,
    build_bank,
    generated_wavetables,
    load_bank,
    read_vitaltable,
)

PHASE = np.arange(FRAME_SIZE) / FRAME_SIZE


def _audio_file_table(periods: list[np.ndarray], window: int = FRAME_SIZE) -> dict:
    """A table in the form Vital gives an imported sound (16-bit PCM, two key frames spanning the windows)."""
    audio = np.concatenate(periods)
    pcm = np.round(audio * 32767).astype("<i2")
    return {
        "name": "imported",
        "groups": [
            {
                "components": [
                    {
                        "type": "Audio File Source",
                        "audio_file": base64.b64encode(pcm.tobytes()).decode(),
                        "window_size": float(window),
                        "keyframes": [
                            {"position": 0, "start_position": 0.0},
                            {"position": 256, "start_position": float(window * (len(periods) - 1))},
                        ],
                    }
                ]
            }
        ],
    }


def test_generated_tables_are_normalised_and_distinct():
    tables = generated_wavetables()
    assert {"Sine", "Saw", "Pulse Width", "Harmonic Series", "Vowels Mid"} <= {t.name for t in tables}
    for t in tables:
        assert t.frames.shape[1] == FRAME_SIZE and len(t.frames) in (1, MAX_KEYFRAMES)
        assert np.max(np.abs(t.frames)) == pytest.approx(1.0) and np.abs(t.frames.mean(axis=1)).max() < 1e-4
    features = np.stack([t.features for t in tables])
    distances = np.sum((features[:, None] - features[None]) ** 2, axis=2) + np.eye(len(tables)) * 1e9
    assert distances.min() > 1.0  # no two generated tables sound alike


def test_vowel_tables_put_energy_at_their_formants():
    vowels = {t.name: t for t in generated_wavetables()}["Vowels Low"]  # a .. u across the table, for a 110 Hz note
    spectrum = lambda w: np.abs(np.fft.rfft(w))[1:40]  # harmonic k (110 k Hz) at index k - 1
    a, u = spectrum(vowels.frame_at(0)), spectrum(vowels.frame_at(256))
    assert np.argmax(a) + 1 in (7, 8)  # /a/: F1 near 800 Hz
    assert np.argmax(u) + 1 == 3  # /u/: F1 near 325 Hz
    assert a[9:11].max() > 5 * u[9:11].max()  # /a/'s F2 near 1150 Hz; /u/ has nothing there


def test_wave_source_round_trip_and_interpolation_free_playback():
    frames = np.stack([np.sin(2 * np.pi * k * PHASE) for k in (1, 2)])
    table = Wavetable.from_frames("two", [0, 256], frames)
    again = Wavetable.from_vital(json.loads(json.dumps(table.to_vital())))
    np.testing.assert_allclose(again.frames, table.frames, atol=1e-6)
    component = table.to_vital()["groups"][0]["components"][0]
    assert component["type"] == "Wave Source" and component["interpolation_style"] == 0
    assert [k["position"] for k in component["keyframes"]] == table.positions
    np.testing.assert_array_equal(table.frame_at(table.positions[1] - 1), table.frames[0])  # no crossfade


def test_a_constant_table_keeps_one_key_frame():
    saw = np.linspace(1, -1, FRAME_SIZE)
    assert len(Wavetable.from_frames("saw", [0, 100, 256], np.stack([saw, saw, saw])).frames) == 1


def test_audio_file_tables_are_read_window_by_window():
    periods = [np.sin(2 * np.pi * k * PHASE) * 0.5 for k in (1, 3, 5, 7)]
    peak = lambda frame: int(np.argmax(np.abs(np.fft.rfft(frame))))
    table = Wavetable.from_vital(_audio_file_table(periods))
    assert len(table.frames) == MAX_KEYFRAMES
    assert [peak(table.frame_at(p)) for p in (0, 256 / 3, 2 * 256 / 3, 256)] == [1, 3, 5, 7]
    short = Wavetable.from_vital(_audio_file_table([p[::8] for p in periods], window=FRAME_SIZE // 8))
    assert peak(short.frame_at(256)) == 7  # 256-sample windows stretched to 2048


@pytest.mark.parametrize(
    "data, message",
    [
        ({"groups": []}, "not a Vital wavetable"),
        ({"groups": [{"components": [{"type": "Line Source"}]}]}, "Line Source"),
        ({"groups": [{"components": [{"type": "Wave Source", "keyframes": []}]}]}, "without key frames"),
        ({"groups": [{"components": [{"type": "Wave Source", "keyframes": [{"wave_data": "%%%"}]}]}]}, "not base64"),
        ({"groups": [{"components": [{"type": "Wave Source", "keyframes": [{"wave_data": "AAAAAA=="}]}]}]}, "holds 1 samples"),
    ],
)
def test_unreadable_tables_name_the_problem(data, message):
    with pytest.raises(WavetableError, match=message):
        Wavetable.from_vital(data, name="t")


def test_nearest_finds_a_tables_own_entry_and_unreadable_tables_map_to_the_first():
    bank = WavetableBank(generated_wavetables())
    for i in (0, 3, 7, len(bank) - 1):
        assert bank.index_of_vital(bank.vital(i)) == i
        noisy = Wavetable(bank[i].name, bank[i].frames + np.random.default_rng(i).normal(0, 1e-3, bank[i].frames.shape))
        assert bank.nearest(noisy) == i
    assert bank.index_of_vital({"groups": [{"components": [{"type": "Line Source"}]}]}) == 0
    assert bank.index_of_vital(init_preset().settings["wavetables"][0]) == bank.names.index("Saw")  # Vital's init table is a saw


def test_bank_file_round_trip_and_errors(tmp_path):
    bank = WavetableBank(generated_wavetables()[:5], name="five")
    path = bank.save(tmp_path / "five.npz")
    again = WavetableBank.load(path)
    assert again.names == bank.names and again.fingerprint == bank.fingerprint
    for a, b in zip(again, bank):
        np.testing.assert_allclose(a.frames, b.frames, atol=1e-3)  # stored as float16
    (tmp_path / "bad.npz").write_bytes(b"not a bank")
    with pytest.raises(WavetableError, match="bad.npz"):
        WavetableBank.load(tmp_path / "bad.npz")
    with pytest.raises(WavetableError, match="unique"):
        WavetableBank([bank[0], bank[0]])


def test_build_bank_reads_a_folder_and_names_what_it_skips(tmp_path):
    periods = [np.sin(2 * np.pi * k * PHASE) * 0.5 for k in (1, 2)]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "good.vitaltable").write_text(json.dumps(_audio_file_table(periods)))
    (tmp_path / "b.vitaltable").write_text("{not json")
    (tmp_path / "c.vitaltable").write_text(json.dumps({"groups": [{"components": [{"type": "Shepard Tone Source"}]}]}))
    bank, skipped = build_bank(tmp_path, name="mine", generated=False)
    assert bank.names == ("good",) and read_vitaltable(tmp_path / "a" / "good.vitaltable").source == "good.vitaltable"
    assert len(skipped) == 2 and "b.vitaltable" in skipped[0] and "Shepard" in skipped[1]
    with pytest.raises(FileNotFoundError, match="no-such"):
        build_bank(tmp_path / "no-such")


def test_shipped_bank_holds_the_generated_and_cc0_tables():
    bank = load_bank("studio")
    assert bank.names[: len(generated_wavetables())] == tuple(t.name for t in generated_wavetables())
    assert len(bank) == len(generated_wavetables()) + 129
    assert all(np.max(np.abs(t.frames)) == pytest.approx(1.0, abs=1e-3) for t in bank)


def test_a_space_needs_a_bank_for_its_wavetable_parameters(tmp_path):
    with pytest.raises(ValueError, match="needs a wavetable bank"):
        ParameterSpace.from_dict({"parameters": ["osc_1_wavetable"]})
    with pytest.raises(ValueError, match="wavetables: .*no-such"):
        ParameterSpace.from_dict({"parameters": ["osc_1_wavetable"], "wavetables": "no-such"})
    WavetableBank(generated_wavetables()[:3], name="three").save(tmp_path / "three.npz")
    (tmp_path / "space.yaml").write_text("parameters: [osc_2_wavetable, osc_2_wave_frame]\nwavetables: ./three.npz\n")
    space = ParameterSpace.load(tmp_path / "space.yaml")
    assert space["osc_2_wavetable"].options == ("Sine", "Triangle", "Saw") and space["osc_2_wavetable"].group == "osc_2"
    assert not space["osc_2_wavetable"].is_control and space["osc_2_wavetable"].wavetable_index == 1
