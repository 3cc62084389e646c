import pytest

from scripts.check_screening import main, screen_settings


def test_screen_settings_override_the_screening_render():
    settings = screen_settings(["sample_rate=22050", "render_seconds=1.0", "oversampling=null"])
    assert settings["sample_rate"] == 22050 and settings["render_seconds"] == 1.0 and settings["oversampling"] is None
    assert settings["reset"] == "settle"  # the rest of SCREEN_RENDER stays


@pytest.mark.parametrize("pair", ["sample_rate", "tempo=2", "sample_rate=100", "sample_rate=fast", "reset=sometimes"])
def test_bad_screen_settings_are_refused_before_the_model_loads(pair, capsys):
    with pytest.raises(SystemExit):
        main(["--screen", pair, "--checkpoint", "no/such/model"])
    assert pair.partition("=")[0] in capsys.readouterr().err


def test_a_lower_screening_rate_is_compared_against_the_resampled_target(capsys):
    main(["--n", "1", "--draws", "0", "--screen", "sample_rate=22050", "render_seconds=1.0"])
    out = capsys.readouterr().out
    assert "'sample_rate': 22050" in out and "'render_seconds': 1.0" in out
    assert "1 targets x 8 candidates" in out and "screened choice" in out


def test_a_screening_render_longer_than_the_targets_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--n", "1", "--screen", "render_seconds=3.0"])
    assert "longer than the model's targets" in capsys.readouterr().err
