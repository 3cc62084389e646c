import yaml

from scripts.analyse_errors import main
from tests.agents.conftest import tiny_checkpoint, tiny_dataset  # noqa: F401 - fixtures
from tests.agents.test_dataset import tiny_config


def test_true_values_for_everything_reproduce_the_target(tiny_checkpoint, tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().to_dict()))
    main(["--checkpoint", str(tiny_checkpoint), "--dataset-config", str(config), "--n", "2"])
    out = capsys.readouterr().out
    rows = {line[:32].strip(): line[32:].split() for line in out.splitlines() if len(line) > 32 and line[32:].split()[-1].isdigit()}
    assert float(rows["everything"][0]) == 0.0  # deterministic renders: the true preset is the target
    assert {"osc_1", "envelope 1 (amplitude)", "pitch (transpose, tune)", "modulation"} <= set(rows)
    assert "transpose MAE (semitones): osc_1_transpose" in out
    assert "(24 = full compensation): osc_1_transpose" in out  # the tiny model is note-conditioned
