import yaml

from scripts.bench.bench_checkpoint import main
from tests.agents.conftest import TINY_MODEL


def test_the_adapter_is_smaller_than_the_standalone_copy_and_computes_the_same(tmp_path, capsys):
    encoder = {**TINY_MODEL["encoder"], "lora_rank": 4, "lora_blocks": 1}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": {**TINY_MODEL, "encoder": encoder}}))
    main(["--config", str(config), "--repeats", "1"])
    out = capsys.readouterr().out.splitlines()
    sizes = {line.split()[0]: float(line.split()[-4]) for line in out if line.startswith(("adapter", "standalone"))}
    assert 0 < sizes["adapter"] < sizes["standalone"]
    assert out[-1] == "both give the same outputs: True"
