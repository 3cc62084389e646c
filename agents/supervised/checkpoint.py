"""Checkpoints: weights as safetensors, everything else as JSON; nothing is unpickled when loading.

A checkpoint folder holds ``model.safetensors`` (the network), ``config.json`` (model config, the
parameter space's spec and fingerprint, the training step and metrics) and, while training,
``optimizer.pt`` (optimizer and scheduler state, read back with ``torch.load(weights_only=True)``, which
only rebuilds tensors and plain containers).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from agents.supervised.model import ModelConfig, SoundMatcher
from vital_gym.params import ParameterSpace

MODEL_FILE, CONFIG_FILE, OPTIMIZER_FILE = "model.safetensors", "config.json", "optimizer.pt"
# Weights a fine-tuned model may add to the checkpoint it starts from (see init_weights).
FINE_TUNE_ADDITIONS = (
    "decoder.note_proj.weight", "decoder.hypothesis_queries", "decoder.score_head.weight", "decoder.score_head.bias", "decoder.spread_heads.",
    "decoder.switch_proj.weight",
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing files, another parameter space, other shapes)."""


def save_checkpoint(
    folder: str | Path, model: SoundMatcher, space_spec: str | dict[str, Any], extra: dict[str, Any] | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint atomically (a temporary folder renamed over the old one)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / MODEL_FILE))
    meta = {
        "model": model.config.to_dict(),
        "space": space_spec,
        "space_fingerprint": model.space_fingerprint,
        **(extra or {}),
    }
    (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=str))
    if optimizer_state is not None:
        torch.save(optimizer_state, tmp / OPTIMIZER_FILE)
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        import shutil

        shutil.rmtree(old)
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not (folder / MODEL_FILE).is_file() or not path.is_file():
        raise CheckpointError(f"{folder} is not a checkpoint (needs {MODEL_FILE} and {CONFIG_FILE})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def load_model(
    folder: str | Path, space: ParameterSpace | None = None, device: str = "cpu"
) -> tuple[SoundMatcher, ParameterSpace, dict[str, Any]]:
    """The network, its parameter space and the checkpoint's JSON.

    With ``space`` given, a checkpoint trained on another space is refused with the reason.
    """
    meta = read_config(folder)
    own = ParameterSpace.from_spec(meta["space"])
    if own.fingerprint != meta.get("space_fingerprint"):
        raise CheckpointError(f"{folder}: its space '{own.name}' has changed since training (fingerprint differs)")
    if space is not None and space.fingerprint != own.fingerprint:
        raise CheckpointError(
            f"{folder} was trained on parameter space '{own.name}' ({own.fingerprint}), not '{space.name}' ({space.fingerprint})"
        )
    model = SoundMatcher(own, ModelConfig.from_dict(_without_checkpoint(meta["model"])))
    _load_weights(model, folder)
    return model.to(device).eval(), own, meta


def init_weights(model: SoundMatcher, folder: str | Path) -> None:
    """Copy a checkpoint's weights into ``model`` (to fine-tune it), refusing any mismatch but one.

    The only weights ``model`` may have that the checkpoint lacks are a note-conditioned decoder's note
    map and a switch-conditioned decoder's switch map, which start at zero (an unconditioned model
    fine-tuned into a conditioned one starts from the same function), and a K-hypothesis decoder's
    hypothesis embeddings and score head (a one-hypothesis model becomes K perturbed copies of itself).
    A checkpoint with fewer hypotheses than ``model`` keeps its own as the first ones, and each further
    hypothesis is a copy of one of them plus ``model``'s own random embedding (more hypotheses from a
    trained model); fewer than the checkpoint's are refused.
    """
    meta = read_config(folder)
    if meta.get("space_fingerprint") != model.space_fingerprint:
        raise CheckpointError(f"{folder} was trained on another parameter space ('{meta.get('space')}') than this model's")
    _load_weights(model, folder, may_lack=FINE_TUNE_ADDITIONS, adapt=_more_hypotheses)


def _more_hypotheses(model: SoundMatcher, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint's K hypothesis embeddings widened to ``model``'s K' > K (see :func:`init_weights`)."""
    key = "decoder.hypothesis_queries"
    ours = model.decoder.hypothesis_queries
    if key not in state or ours is None or state[key].shape == ours.shape or state[key].shape[0] > ours.shape[0]:
        return state  # nothing to widen (a mismatch left is refused by the load)
    theirs = state[key]
    widened = theirs[torch.arange(ours.shape[0]) % theirs.shape[0]]  # their K, then copies of them ...
    widened[len(theirs) :] += ours.detach().cpu()[len(theirs) :]  # ... each moved by our random embedding
    return {**state, key: widened}


def _load_weights(
    model: SoundMatcher, folder: str | Path, may_lack: tuple[str, ...] = (),
    adapt: Callable[[SoundMatcher, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> None:
    """``folder``'s weights into ``model``; a weight missing (other than ``may_lack``), extra or of another shape is refused.

    ``adapt(model, state) -> state`` may reshape the checkpoint's weights first (fine-tuning only).
    """
    from safetensors.torch import load_file

    state = load_file(str(Path(folder) / MODEL_FILE))
    if adapt is not None:
        state = adapt(model, state)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a weight of another shape
        raise CheckpointError(f"{folder}: weights do not fit the model config ({str(e)[:300]})") from None
    missing = [k for k in missing if not k.startswith(may_lack)]  # names, or prefixes ending in '.'
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: weights do not fit the model config: another architecture (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )


def _without_checkpoint(model_config: dict[str, Any]) -> dict[str, Any]:
    """The encoder's pretrained weights are inside the checkpoint already: do not read them again."""
    encoder = {**model_config.get("encoder", {}), "checkpoint": None}
    return {**model_config, "encoder": encoder}


def load_optimizer_state(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / OPTIMIZER_FILE
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
