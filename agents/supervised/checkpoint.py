"""Checkpoints: weights as safetensors, everything else as JSON; nothing is unpickled when loading.

A checkpoint folder holds ``model.safetensors`` (the network), ``config.json`` (model config, the
parameter space's spec and fingerprint, the training step and metrics) and, while training,
``optimizer.pt`` (optimizer and scheduler state, read back with ``torch.load(weights_only=True)``, which
only rebuilds tensors and plain containers).

Adapter checkpoints. A model whose encoder was read from a base file (``EncoderConfig.checkpoint``, e.g.
AudioMAE's ViT-B/16) and kept frozen (LoRA) would store ~330 MB of weights it never changed in every
checkpoint. By default the checkpoint leaves those out and records the base file instead
(``config.json``'s ``base_encoder``: where it was, its SHA-256, how many weights it supplies), as PEFT
saves LoRA adapters apart from their base model. Loading reads the base file again, and refuses one whose
SHA-256 differs, so an adapter is never applied to other weights than it was trained over.
``base_encoder=`` names the file where it now is; :func:`standalone` writes a copy that holds every
weight, for a machine without the base file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import torch

from agents.supervised.model import HF_HUB_PREFIX, ModelConfig, SoundMatcher, encoder_checkpoint_path
from vital_gym.params import ParameterSpace

MODEL_FILE, CONFIG_FILE, OPTIMIZER_FILE = "model.safetensors", "config.json", "optimizer.pt"
BASE_KEY = "base_encoder"  # config.json's record of an adapter checkpoint's base file
BASE_HOW = "pass base_encoder= (vital-gym match --base-encoder FILE), or use a standalone copy (vital-gym checkpoint standalone)"
# Weights a fine-tuned model may add to the checkpoint it starts from (see init_weights).
FINE_TUNE_ADDITIONS = (
    "decoder.note_proj.weight",
    "decoder.hypothesis_queries",
    "decoder.score_head.weight",
    "decoder.score_head.bias",
    "decoder.spread_heads.",
    "decoder.switch_proj.weight",
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing files, another parameter space, other shapes)."""


def save_checkpoint(
    folder: str | Path,
    model: SoundMatcher,
    space_spec: str | dict[str, Any],
    extra: dict[str, Any] | None = None,
    optimizer_state: dict[str, Any] | None = None,
    base_weights: bool = False,
) -> Path:
    """Write the checkpoint atomically (a temporary folder renamed over the old one).

    Without ``base_weights`` the weights of the encoder's base file that were not trained are left out and
    the file is recorded (module docstring, "Adapter checkpoints"); with it, or for a model without such
    weights, every weight is written.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    extra = dict(extra or {})
    omitted = set() if base_weights else set(model.frozen_base_weights())
    if omitted:
        encoder = model.encoder
        spec = str(encoder.config.checkpoint)
        extra[BASE_KEY] = {
            "checkpoint": spec if spec.startswith(HF_HUB_PREFIX) else str(encoder.base_file),
            "sha256": encoder.base_sha256,
            "weights": len(omitted),
        }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k not in omitted}
    save_file(state, str(tmp / MODEL_FILE))
    meta = {
        "model": model.config.to_dict(),
        "space": space_spec,
        "space_fingerprint": model.space_fingerprint,
        **extra,
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
    folder: str | Path, space: ParameterSpace | None = None, device: str = "cpu", base_encoder: str | Path | None = None
) -> tuple[SoundMatcher, ParameterSpace, dict[str, Any]]:
    """The network, its parameter space and the checkpoint's JSON.

    With ``space`` given, a checkpoint trained on another space is refused with the reason. An adapter
    checkpoint reads its encoder's base file first: the one it recorded, or ``base_encoder`` (a local
    file or ``hf-hub:OWNER/REPO/FILE``), which must have the recorded SHA-256.
    """
    meta = read_config(folder)
    own = ParameterSpace.from_spec(meta["space"])
    if own.fingerprint != meta.get("space_fingerprint"):
        raise CheckpointError(f"{folder}: its space '{own.name}' has changed since training (fingerprint differs)")
    if space is not None and space.fingerprint != own.fingerprint:
        raise CheckpointError(f"{folder} was trained on parameter space '{own.name}' ({own.fingerprint}), not '{space.name}' ({space.fingerprint})")
    if BASE_KEY in meta:
        encoder = {**meta["model"].get("encoder", {}), "checkpoint": _base_file(folder, meta[BASE_KEY], base_encoder)}
        model = SoundMatcher(own, ModelConfig.from_dict({**meta["model"], "encoder": encoder}))
        _check_base(folder, meta[BASE_KEY], model, BASE_HOW)
    else:
        model = SoundMatcher(own, ModelConfig.from_dict(without_encoder_file(meta["model"])))
    _load_weights(model, folder, base=model.base_weights() if BASE_KEY in meta else ())
    return model.to(device).eval(), own, meta


def _base_file(folder: str | Path, record: dict[str, Any], base_encoder: str | Path | None) -> str:
    """The adapter checkpoint's base file as ``EncoderConfig.checkpoint`` takes it (``record``'s, or
    ``base_encoder`` instead), refused before anything is read if it is not there."""
    spec = str(base_encoder) if base_encoder is not None else record["checkpoint"]
    try:
        path = encoder_checkpoint_path(spec)
    except (FileNotFoundError, ValueError) as e:
        raise CheckpointError(f"{folder} holds its trained weights only, over the base encoder {spec}: {e}; {BASE_HOW}") from None
    if not path.is_file():
        raise CheckpointError(
            f"{folder} holds its trained weights only, over the base encoder {spec} (sha256 {record['sha256'][:16]}...), which does not exist; {BASE_HOW}"
        )
    return spec


def _check_base(folder: str | Path, record: dict[str, Any], model: SoundMatcher, fix: str) -> None:
    """Refuse ``model`` unless its encoder read the adapter checkpoint's base file: the SHA-256 it recorded
    (the encoder keeps the digest, so a later save does not hash the file again)."""
    encoder = model.encoder
    if encoder.base_file is None:
        raise CheckpointError(
            f"{folder} holds its trained weights only, over the base encoder {record['checkpoint']} (sha256 {record['sha256'][:16]}...); {fix}"
        )
    if encoder.base_sha256 != record["sha256"]:
        raise CheckpointError(
            f"{encoder.base_file} is not the base encoder {folder} was trained over: its sha256 is {encoder.base_sha256[:16]}..., "
            f"the checkpoint's base {record['checkpoint']} had {record['sha256'][:16]}...; {fix}"
        )


def standalone(folder: str | Path, out: str | Path, base_encoder: str | Path | None = None) -> Path:
    """A copy of the checkpoint at ``folder`` that holds every weight (an adapter checkpoint's base
    weights written in), to load where the base file is not; the optimizer state is not copied."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new folder for the standalone checkpoint")
    model, _, meta = load_model(folder, base_encoder=base_encoder)
    extra = {k: v for k, v in meta.items() if k not in ("model", "space", "space_fingerprint", BASE_KEY)}
    return save_checkpoint(out, model, meta["space"], {**extra, "standalone_of": str(folder)}, base_weights=True)


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
    base: set[str] = set()
    if BASE_KEY in meta:  # its frozen weights are the base file's: this model must have read the same file
        _check_base(folder, meta[BASE_KEY], model, "set this model's encoder checkpoint to that file")
        base = model.base_weights()
    _load_weights(model, folder, may_lack=FINE_TUNE_ADDITIONS, adapt=_more_hypotheses, base=base)


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
    model: SoundMatcher,
    folder: str | Path,
    may_lack: tuple[str, ...] = (),
    adapt: Callable[[SoundMatcher, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    base: Collection[str] = (),
) -> None:
    """``folder``'s weights into ``model``; a weight missing (other than ``may_lack``, or ``base``: the base
    file's weights an adapter checkpoint leaves out), extra or of another shape is refused.

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
    model.encoder.from_base -= {k.removeprefix("encoder.") for k in state}  # they hold the checkpoint's values now
    base = set(base)
    missing = [k for k in missing if k not in base and not k.startswith(may_lack)]  # names, or prefixes ending in '.'
    if missing or unexpected:
        raise CheckpointError(f"{folder}: weights do not fit the model config: another architecture (missing {missing[:5]}, unexpected {unexpected[:5]})")


def without_encoder_file(model_config: dict[str, Any]) -> dict[str, Any]:
    """``model_config`` without its encoder's pretrained file, for weights that are all stored elsewhere
    (a full checkpoint, a PPO policy): the file is not read again, and need not be there."""
    encoder = {**model_config.get("encoder", {}), "checkpoint": None}
    return {**model_config, "encoder": encoder}


def load_optimizer_state(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / OPTIMIZER_FILE
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
