import yaml

from agents.cli import main
from tests.agents.test_dataset import tiny_config


def test_generate_then_verify(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().to_dict()))
    out = tmp_path / "data"
    assert main(["dataset", "generate", "--config", str(config), "--n", "4", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert "4 samples in 2 shards" in capsys.readouterr().out
    assert main(["dataset", "verify", str(out)]) == 0
    shard = out / "shard-00001.npz"
    shard.write_bytes(shard.read_bytes()[:-10])
    assert main(["dataset", "verify", str(out)]) == 1
    assert "1 corrupt or missing" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["dataset", "verify", str(tmp_path)]) == 2
    assert "not a vital-gym dataset folder" in capsys.readouterr().err
