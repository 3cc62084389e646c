#!/usr/bin/env bash
# Make the virtual environment the benchmark runs Syntheon (gudgud96/syntheon) in, as a subprocess.
#
#   scripts/setup_syntheon.sh [VENV]        # default: .syntheon-venv at the repository root
#
# PyPI's syntheon 0.1.0 ships its Vital checkpoint but pins torch 1.12.1 / torchvision 0.13.1 /
# torchaudio 0.12.1 / librosa 0.9.1 / nnAudio 0.3.1, which have no wheels for Python 3.11. So it is
# installed with --no-deps, beside the modern versions of what its Vital path imports:
#   torch + torchvision (torchvision.transforms.Resize; pinned together as in .ci/constraints.txt),
#   librosa, nnAudio (MFCC front end), torchcrepeV2 (pitch; ships its ONNX model; also installed with
#   --no-deps, since it pins torch 1.12.1) with onnxruntime and hmmlearn, mido, bitstruct, pyyaml,
#   soundfile, numpy.
# torchaudio is not needed by the Vital path. The benchmark calls agents/benchmark/syntheon_runner.py
# with this venv's python.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.syntheon-venv}"
PY="${PYTHON:-python3}"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet -c "$ROOT/.ci/constraints.txt" torch torchvision
"$VENV/bin/pip" install --quiet "librosa>=0.10" "nnAudio>=0.3.3" onnxruntime hmmlearn mido bitstruct pyyaml soundfile
"$VENV/bin/pip" install --quiet --no-deps syntheon==0.1.0 torchcrepeV2==0.2.0
# Import check: fails here, not inside a benchmark, when something is missing.
HF_HUB_OFFLINE=1 "$VENV/bin/python" -c "from syntheon import infer_params; print('syntheon ready')"
echo "Syntheon venv: $VENV"
