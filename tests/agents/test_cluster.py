import sys

import pytest

from agents.cluster import connect


def test_asking_for_ray_without_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if it were not installed
    with pytest.raises(ModuleNotFoundError, match=r'pip install "vital-gym\[ray\]"'):
        connect("auto")


def test_the_cli_says_how_to_install_ray_before_writing_anything(monkeypatch, tmp_path, capsys):
    from agents.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    out = tmp_path / "data"
    assert main(["dataset", "generate", "--config", "core", "--n", "4", "-o", str(out), "--ray"]) != 0
    assert "pip install 'vital-gym[ray]'" in capsys.readouterr().err
    assert not out.exists()
