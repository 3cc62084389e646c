"""scripts/probe_proxy.py on the tiny dataset (4 shards of 3 samples)."""

import pytest

from scripts.probe_proxy import main
from tests.agents.conftest import tiny_dataset  # noqa: F401 - fixture


def test_reports_each_source_and_the_nearest_sound_is_never_farther_than_the_nearest_parameters(tiny_dataset, capsys):
    main(["--dataset", str(tiny_dataset), "--val-shards", "1", "--epochs", "2", "--batch-size", "3", "--width", "16"])
    out = capsys.readouterr().out
    assert "9 training and 3 held-out samples" in out
    assert out.count("held-out MSE") == 2  # one line per epoch
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("source"))
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[header + 1 :]}
    assert "all" in rows and set(rows) - {"all"} <= {"uniform", "pluck"}
    n, mse, r2, by_params, by_sound, variance = rows["all"]
    assert n == 3 and mse >= 0 and variance >= 0
    assert by_sound <= by_params + 1e-9  # the nearest log-mel is the nearest by the very distance scored


@pytest.mark.parametrize("args", [["--epochs", "0"], ["--val-shards", "4"]])
def test_bad_arguments_are_refused(tiny_dataset, args):
    with pytest.raises(SystemExit, match="--epochs 0|--val-shards 4"):
        main(["--dataset", str(tiny_dataset), *args])
