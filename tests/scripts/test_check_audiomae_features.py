from scripts.check_audiomae_features import main


def test_stored_audio_features_are_compared_with_rendered_ones_by_level(capsys):
    main(["--n", "3"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("3 samples: uint8 levels")
    rows = [line for line in out if line.strip().startswith("level")]
    assert len(rows) == 5
    assert rows[-1].split("max difference ")[1].startswith(("0,", "1,"))  # loud entries agree to a level
