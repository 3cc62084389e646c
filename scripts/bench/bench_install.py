"""The installed size of vital-gym's core package and of each extra.

    python scripts/bench/bench_install.py                       # core, train, clap, all
    python scripts/bench/bench_install.py --extras core train

For each choice pip resolves what ``pip install "vital-gym[EXTRA]"`` would install into an empty
environment (``pip install --dry-run --ignore-installed --report``, with ``.ci/constraints.txt``), and the
size of each of those distributions is read from this environment's install records (so run it in an
environment that holds the whole suite: ``pip install -e ".[dev]"``). Prints the number of distributions,
the total in GB, and the largest ones. The figures are installed sizes on this platform; the download is
smaller (wheels are compressed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def resolve(extra: str) -> list[str]:
    """The distribution names pip would install for ``vital-gym[extra]`` (``core``: no extra)."""
    spec = str(ROOT) if extra == "core" else f"{ROOT}[{extra}]"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "-c",
                str(ROOT / ".ci" / "constraints.txt"),
                spec,
            ],
            check=True,
        )
        return [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]


def installed_bytes(name: str) -> int | None:
    """The size of ``name``'s installed files in this environment, or None when it is not installed."""
    try:
        files = metadata.distribution(name).files or []
    except metadata.PackageNotFoundError:
        return None
    return sum(f.size or 0 for f in files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extras", nargs="+", default=["core", "train", "clap", "all"])
    ap.add_argument("--top", type=int, default=5, help="the largest distributions to name")
    args = ap.parse_args(argv)
    print("| install | distributions | installed size | largest |")
    print("| --- | ---: | ---: | --- |")
    for extra in args.extras:
        names = [n for n in resolve(extra) if n.lower().replace("_", "-") != "vital-gym"]
        sizes = {n: installed_bytes(n) for n in names}
        missing = sorted(n for n, b in sizes.items() if b is None)
        total = sum(b for b in sizes.values() if b)
        largest = ", ".join(f"{n} {b / 1e9:.2f}" for n, b in sorted(sizes.items(), key=lambda kv: -(kv[1] or 0))[: args.top])
        label = "vital-gym" if extra == "core" else f"vital-gym[{extra}]"
        note = f" (not installed here, not counted: {', '.join(missing)})" if missing else ""
        print(f"| `{label}` | {len(names)} | {total / 1e9:.2f} GB | {largest}{note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
