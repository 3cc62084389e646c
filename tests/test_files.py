import stat

import pytest

from vital_gym.files import atomic_file
from vital_gym.preset import init_preset


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_mode_any_new_file_gets(tmp_path):
    """Not mkstemp's 0600: a preset or shard written here is as readable as one written by open()."""
    reference = tmp_path / "reference.txt"
    reference.write_text("x")
    with atomic_file(tmp_path / "a.bin") as f:
        f.write(b"abc")
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    assert _mode(tmp_path / "a.bin") == _mode(reference)
    assert _mode(init_preset().save(tmp_path / "b.vital")) == _mode(reference)


@pytest.mark.parametrize("fsync", [False, True])
def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path, fsync):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_file(path, fsync=fsync) as f:
            f.write(b"new, half")
            raise RuntimeError("half-way")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    with atomic_file(path, fsync=fsync) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
