"""Runs Syntheon on a list of wavs, inside Syntheon's own virtual environment (scripts/setup_syntheon.sh).

    python syntheon_runner.py jobs.json results.json

``jobs.json`` is a list of ``{"key", "wav", "out"}``; ``results.json`` maps each key to ``{"seconds"}`` or
``{"error"}``, rewritten after every item so a crash keeps the finished ones. Standard library and
Syntheon only: this file must not import vital_gym.

Syntheon 0.1.0 was written for librosa 0.9, which took ``sr`` as ``load``'s second positional argument;
librosa 0.10 made it keyword-only, so :func:`_librosa_0_9_load` restores that call form (librosa 0.9 does
not install on Python 3.11 with a current numpy).
"""

import json
import os
import shutil
import sys
import time
import traceback


def _librosa_0_9_load() -> None:
    import functools

    import librosa

    load = librosa.load

    @functools.wraps(load)
    def compat(path, *args, **kwargs):
        if args:
            kwargs["sr"] = args[0]
        return load(path, **kwargs)

    librosa.load = compat


def main() -> int:
    jobs_path, results_path = sys.argv[1], sys.argv[2]
    with open(jobs_path) as f:
        jobs = json.load(f)
    _librosa_0_9_load()
    from syntheon import infer_params  # loads Syntheon's modules once; the model loads per call

    results = {}
    for job in jobs:
        start = time.perf_counter()
        try:
            written, _ = infer_params(job["wav"], "vital", enable_eval=False)  # writes vital_output.vital in cwd
            shutil.move(written, job["out"])
            results[job["key"]] = {"seconds": time.perf_counter() - start}
        except Exception as e:  # noqa: BLE001 - every failure is recorded, none stops the run
            results[job["key"]] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-800:]}
        tmp = results_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f)
        os.replace(tmp, results_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
