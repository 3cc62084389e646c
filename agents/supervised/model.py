"""The supervised sound-matching network: an AudioMAE-style ViT encoder and a parameter decoder.

Shapes: a batch of log-mels ``(B, 1, n_mels, frames)`` in [0, 1] (the env's observation) goes in; the
decoder returns raw outputs ``z`` ``(B, action_dim)`` laid out exactly as the env's action vector
(``ParameterSpace.layout``), and ``actions(z) = tanh(z / 2)`` *is* an env action:

* continuous and integer parameters: ``sigmoid(z)`` is the normalised value, and ``2 sigmoid(z) - 1 =
  tanh(z / 2)`` the action;
* on/off: ``z`` is the logit of "on"; the env turns it on when the action is > 0, i.e. when p > 0.5;
* categorical blocks: ``z`` are the logits; ``tanh`` keeps their argmax, which the env decodes.

So PPO can start from this network with no glue (``agents/ppo``), and a prediction is
``space.action_to_vector(actions(z))``.

Encoder. AudioMAE is a ViT over 16x16 patches of a log-mel spectrogram laid out time x frequency
(``(B, 1, T, F)``, 1024 x 128 for the released ViT-B/16). :class:`AudioEncoder` builds that ViT with timm,
transposes the env's ``(n_mels, frames)`` log-mel to ``(frames, n_mels)`` and pads/crops the time axis to
``EncoderConfig.frames``. ``checkpoint`` loads the official AudioMAE weights (or any timm-ViT state dict)
from a local file, or from a Hugging Face repository for a user who is online (``hf-hub:OWNER/REPO/FILE``); ``lora_rank`` freezes the encoder and adds LoRA adapters to the attention of the last
``lora_blocks`` blocks. ``frontend`` names the features it reads (:mod:`vital_gym.features`): with
"audiomae" it is given AudioMAE's own filterbank, mapped back to AudioMAE's normalised values and padded
as AudioMAE pads, so released weights see what they were trained on.

Decoder. One learned query per parameter group of the space (each oscillator, each filter, envelopes,
LFOs, effects, global, each modulation slot) cross-attends to the encoder's patch tokens through a
transformer decoder; a linear head per group maps its query to that group's action dimensions.

Note conditioning (``DecoderConfig.note_conditioning``). A preset's pitch parameters (transpose, tune)
are relative to the key that plays it: audio at MIDI 55 is transpose 0 played at 55, or transpose -5
played at 60. A network that sees only the audio cannot tell these apart, so with training notes drawn
from several keys it learns their average, and a preset played at the target's own key comes out
transposed. A conditioned decoder is told the note the preset will be played at (``midi_note``, ``(B,)``):
``(note - 60) / 12`` goes through a linear map, initialised at zero, added to every query. At zero the
conditioned network computes exactly what the unconditioned one does, so a trained unconditioned model
can be fine-tuned into a conditioned one (``init_from`` in the training config).

Several hypotheses (``DecoderConfig.hypotheses`` = K > 1). Many presets sound alike (three interchangeable
oscillators, an envelope too slow to matter at a high sustain, a filter open past the spectrum), so one
regression output learns the mean of those presets, which sounds like none of them. With K hypotheses the
decoder proposes K whole presets per sound: every group query gets a learned hypothesis embedding added,
and each of the K query sets is decoded independently. Trained with a winner-takes-all loss
(``losses.HypothesisLoss``), each hypothesis specialises in a region of preset space, and a score head
learns which one wins. ``forward`` returns the best-scored hypothesis (so PPO and one-render matching need
nothing new); ``hypotheses`` returns all K, which ``agents/match.py`` renders to keep the closest.

Spread (``DecoderConfig.spread``). A hypothesis' categorical and on/off outputs are already distributions,
but a continuous output is one value. With ``spread`` a second head per group gives, per hypothesis, the
log standard deviation of each continuous value about the truth when that hypothesis is the one that fits
(``predictive``; trained by Gaussian NLL in ``losses.HypothesisLoss``). The heads read the decoder's
output detached, so learning them leaves the hypotheses as they were (a trained model gets spread heads
by a fine-tune of those heads alone). :func:`draw_presets` draws presets from all of these distributions:
the candidates ``vital-gym match`` renders beside the hypotheses.

Switch conditioning (``DecoderConfig.switch_conditioning``). Each hypothesis' on/off outputs are
independent probabilities, and its other outputs were fitted to every sound it won, whichever modules
were on: on sounds where the switches cannot be heard apart (a random preset with three oscillators
and two filters) they sit near 50 %, and a draw of them pairs, say, oscillator 2 switched on with
settings learnt where it was off. A conditioned decoder can be told the switches (``switches`` ``(B, S)``
or ``(B, K, S)``, one entry per on/off parameter in the space's order: +1 on, -1 off, 0 not told),
through a linear map, initialised at zero, added to every query; told switches come out as sure raw
outputs (``SURE_LOGIT``). Trained with the true switches told on part of every batch
(``TrainConfig.switch_teacher``), it learns the other parameters *given* the switches, and still predicts
them when told nothing. ``Matcher.candidates`` first asks it for the switches, draws patterns from them,
then asks again given each pattern: each candidate is a preset whose settings fit its own switches.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vital_gym.features import FRONTENDS, AudioMAEFilterbank, audiomae_normalised
from vital_gym.params import Kind, ParameterSpace


@dataclass
class EncoderConfig:
    """A ViT over (time x mel) patches. Defaults: the CPU-sized model this project trains itself."""

    n_mels: int = 128
    frames: int = 176  # time axis after pad/crop: a multiple of patch_size (2 s at hop 512 is 173)
    patch_size: int = 16
    embed_dim: int = 192
    depth: int = 6
    num_heads: int = 3
    mlp_ratio: float = 4.0
    drop_path: float = 0.0
    checkpoint: str | None = None  # AudioMAE / timm ViT weights: a local file or hf-hub:OWNER/REPO/FILE
    lora_rank: int = 0  # > 0: freeze the encoder, train LoRA adapters instead
    lora_blocks: int = 4
    lora_alpha: float = 32.0
    frontend: str = "vital"  # the features it reads: the dataset's and env's observation frontend must match

    def __post_init__(self) -> None:
        if self.frontend not in FRONTENDS:
            raise ValueError(f"encoder frontend={self.frontend!r}: use one of {list(FRONTENDS)}")

    @classmethod
    def audiomae_base(cls, **changes: Any) -> EncoderConfig:
        """ViT-B/16 on 1024 x 128 reading AudioMAE's filterbank, the released AudioMAE geometry (weights via
        ``checkpoint``)."""
        return cls(**{"frames": 1024, "embed_dim": 768, "depth": 12, "num_heads": 12, "frontend": "audiomae", **changes})


@dataclass
class DecoderConfig:
    dim: int = 192
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    note_conditioning: bool = False  # the decoder is told the MIDI note the preset will be played at
    hypotheses: int = 1  # K > 1: K whole presets per sound and a score for each (see "Several hypotheses")
    spread: bool = False  # a head per group predicting how far each continuous value may be off (see "Spread")
    switch_conditioning: bool = False  # the decoder may be told the on/off switches (see "Switch conditioning")


NOTE_CENTRE, NOTE_SCALE = 60.0, 12.0  # note features: (note - 60) / 12, one unit per octave
LOG_SPREAD_MIN, LOG_SPREAD_INIT = -7.0, -4.0  # spreads are kept within [e^-7, 1] of the unit range
SURE_LOGIT = 10.0  # a decided choice as raw outputs: tanh(10 / 2) = 0.9999, as decided as an action gets


@dataclass
class ModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(EncoderConfig(**d.get("encoder", {})), DecoderConfig(**d.get("decoder", {})))


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * B(A(x))`` with ``base`` frozen and ``B`` starting at zero (Hu et al. 2021)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.down = nn.Linear(base.in_features, rank, bias=False)
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.up(self.down(x))


class AudioEncoder(nn.Module):
    """``(B, 1, n_mels, frames)`` log-mel -> ``(B, num_patches, embed_dim)`` patch tokens."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        if config.frames % config.patch_size or config.n_mels % config.patch_size:
            raise ValueError(f"frames={config.frames} and n_mels={config.n_mels} must be multiples of patch_size={config.patch_size}")
        self.config = config
        self.vit = VisionTransformer(
            img_size=(config.frames, config.n_mels),
            patch_size=config.patch_size,
            in_chans=1,
            num_classes=0,
            global_pool="",
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            drop_path_rate=config.drop_path,
        )
        self.base_file: Path | None = None  # the file ``checkpoint`` named, once read
        if config.checkpoint:
            self.base_file = encoder_checkpoint_path(config.checkpoint).resolve()
            load_vit_weights(self.vit, self.base_file)
        if config.lora_rank > 0:
            for p in self.vit.parameters():
                p.requires_grad_(False)
            for block in self.vit.blocks[-config.lora_blocks :]:
                block.attn.qkv = LoRALinear(block.attn.qkv, config.lora_rank, config.lora_alpha)
                block.attn.proj = LoRALinear(block.attn.proj, config.lora_rank, config.lora_alpha)
        # The names of the weights that still hold the base file's values (LoRA's own weights are new);
        # a checkpoint loaded over them takes its names out (:func:`agents.supervised.checkpoint.load_model`).
        self.from_base: set[str] = set()
        if self.base_file is not None:
            self.from_base = {n for n, _ in self.named_parameters() if not n.endswith((".down.weight", ".up.weight"))}
        self._base_sha256: str | None = None

    @property
    def base_sha256(self) -> str | None:
        """SHA-256 of :attr:`base_file` (None without one): what an adapter checkpoint records of its base."""
        if self.base_file is not None and self._base_sha256 is None:
            from agents.dataset.shards import sha256

            self._base_sha256 = sha256(self.base_file)
        return self._base_sha256

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = logmel.transpose(-1, -2)  # (B, 1, frames, n_mels): AudioMAE's time x frequency layout
        pad = 0.0
        if self.config.frontend == "audiomae":  # AudioMAE pads a short clip's filterbank with zeros, then normalises
            x, pad = audiomae_normalised(x), AudioMAEFilterbank.Z_PAD
        t = x.shape[-2]
        if t < self.config.frames:
            x = nn.functional.pad(x, (0, 0, 0, self.config.frames - t), value=pad)
        x = x[..., : self.config.frames, :]
        tokens = self.vit.forward_features(x)
        return tokens[:, self.vit.num_prefix_tokens :]


HF_HUB_PREFIX = "hf-hub:"


def encoder_checkpoint_path(spec: str) -> Path:
    """A local file, or ``hf-hub:OWNER/REPO/FILE``: a file of a Hugging Face repository (a port of the
    AudioMAE weights, say; check its licence), fetched once into the Hugging Face cache and read from there
    after, also offline (``HF_HUB_OFFLINE=1``)."""
    if not spec.startswith(HF_HUB_PREFIX):
        return Path(spec)
    parts = spec.removeprefix(HF_HUB_PREFIX).split("/")
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"encoder checkpoint {spec!r}: give hf-hub:OWNER/REPO/FILE")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download("/".join(parts[:2]), "/".join(parts[2:])))
    except Exception as e:  # offline and not cached, no such repo or file, no network
        raise FileNotFoundError(
            f"encoder checkpoint {spec}: {e.__class__.__name__}: {str(e).splitlines()[0]} "
            "(download it once online into the Hugging Face cache, or give a local file)"
        ) from e


def load_vit_weights(vit: nn.Module, path: Path) -> None:
    """Load AudioMAE (or timm ViT) weights saved by torch or safetensors, without unpickling code.

    AudioMAE's files hold ``{"model": state_dict}``; MAE pre-training files also carry the MAE decoder
    (``decoder_*``, ``mask_token``), which is dropped; fine-tuned ones end in ``fc_norm`` (after pooling)
    instead of ``norm``, which then stands in for ``norm``. Position embeddings of a shorter time axis with the same
    frequency patches are cut to their first time rows (as AudioMAE fine-tunes on shorter clips: a patch
    keeps the position of its own time), of any other grid resampled. Every encoder weight must be present:
    a missing one is an error, not a silent random init.
    """
    if not path.is_file():
        raise FileNotFoundError(f"encoder checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model", state.get("state_dict", state))
    state = {k.removeprefix("module.").removeprefix("encoder."): v for k, v in state.items()}
    if "norm.weight" not in state and "fc_norm.weight" in state:
        # A fine-tuned AudioMAE file: its ViT dropped the last ``norm`` for ``fc_norm`` over the pooled tokens,
        # the same LayerNorm shape, which normalises each patch token here.
        state["norm.weight"], state["norm.bias"] = state.pop("fc_norm.weight"), state.pop("fc_norm.bias")
    state = {k: v for k, v in state.items() if not k.startswith(("decoder", "mask_token", "head", "fc_norm"))}
    if "pos_embed" in state and state["pos_embed"].shape != vit.pos_embed.shape:
        from timm.layers import resample_abs_pos_embed

        grid = vit.patch_embed.grid_size
        old = state["pos_embed"]
        n_old = old.shape[1] - vit.num_prefix_tokens
        old_grid = (n_old // grid[1], grid[1]) if n_old % grid[1] == 0 else None
        if old_grid is None:
            raise ValueError(f"{path}: cannot map pos_embed {tuple(old.shape)} onto a {grid} patch grid")
        if old_grid[0] > grid[0]:
            prefix, patches = old[:, : vit.num_prefix_tokens], old[:, vit.num_prefix_tokens :]
            patches = patches.reshape(1, *old_grid, -1)[:, : grid[0]].flatten(1, 2)
            state["pos_embed"] = torch.cat([prefix, patches], dim=1)
        else:
            state["pos_embed"] = resample_abs_pos_embed(old, list(grid), list(old_grid), num_prefix_tokens=vit.num_prefix_tokens)
    missing, unexpected = vit.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("head", "fc_norm"))]
    if missing:
        raise ValueError(f"{path}: not an encoder checkpoint of this geometry; missing {missing[:5]} ({len(missing)} keys)")
    if unexpected:
        raise ValueError(f"{path}: unexpected keys {unexpected[:5]} ({len(unexpected)}): another architecture?")


class ParameterDecoder(nn.Module):
    """Encoder tokens ``(B, N, E)`` -> raw outputs ``(B, action_dim)`` in the env's action layout."""

    def __init__(self, space: ParameterSpace, encoder_dim: int, config: DecoderConfig):
        super().__init__()
        self.group_names = list(space.groups)
        self.action_dim = space.action_dim
        self.queries = nn.Parameter(torch.randn(len(self.group_names), config.dim) * 0.02)
        self.memory_proj = nn.Linear(encoder_dim, config.dim) if encoder_dim != config.dim else nn.Identity()
        layer = nn.TransformerDecoderLayer(config.dim, config.num_heads, int(config.dim * config.mlp_ratio), config.dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.depth, norm=nn.LayerNorm(config.dim))
        by_group: dict[str, list[int]] = {g: [] for g in self.group_names}
        for s in space.layout:
            by_group[s.group].extend(range(s.start, s.stop))
        self.heads = nn.ModuleList(nn.Linear(config.dim, len(by_group[g])) for g in self.group_names)
        for g in self.group_names:
            self.register_buffer(f"dims_{g}", torch.tensor(by_group[g], dtype=torch.long), persistent=False)
        # Built last, so the other weights draw the same random numbers with or without it.
        self.note_proj = nn.Linear(1, config.dim, bias=False) if config.note_conditioning else None
        if self.note_proj is not None:
            nn.init.zeros_(self.note_proj.weight)
        if config.hypotheses < 1:
            raise ValueError(f"hypotheses={config.hypotheses}: the decoder needs at least one")
        self.num_hypotheses = config.hypotheses
        # Hypothesis embeddings as large as the trained group queries (std ~0.02), so the K start apart.
        self.hypothesis_queries = nn.Parameter(torch.randn(config.hypotheses, config.dim) * 0.02) if config.hypotheses > 1 else None
        self.score_head = nn.Linear(config.dim, 1) if config.hypotheses > 1 else None
        self.spread_heads = None
        if config.spread:  # every spread starts small and equal (e^-4 = 0.018): a new head draws near the hypothesis
            self.spread_heads = nn.ModuleList(nn.Linear(config.dim, len(by_group[g])) for g in self.group_names)
            for head in self.spread_heads:
                nn.init.zeros_(head.weight)
                nn.init.constant_(head.bias, LOG_SPREAD_INIT)
        toggles = [(i, s.start) for i, s in enumerate(space.layout) if s.kind is Kind.TOGGLE]
        self.register_buffer("switch_params", torch.tensor([i for i, _ in toggles], dtype=torch.long), persistent=False)
        self.register_buffer("switch_dims", torch.tensor([d for _, d in toggles], dtype=torch.long), persistent=False)
        self.switch_proj = None
        if config.switch_conditioning:
            if not toggles:
                raise ValueError(f"switch_conditioning: space '{space.name}' has no on/off parameter")
            self.switch_proj = nn.Linear(len(toggles), config.dim, bias=False)
            nn.init.zeros_(self.switch_proj.weight)

    def hypotheses(
        self, tokens: torch.Tensor, midi_note: torch.Tensor | None = None, switches: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw outputs of every hypothesis ``(B, K, action_dim)`` and their score logits ``(B, K)`` (zeros when K = 1).

        ``midi_note`` ``(B,)``: the note each preset will be played at (a conditioned decoder needs it).
        ``switches`` ``(B, S)`` or ``(B, K, S)``: on/off switches told to a switch-conditioned decoder
        (module docstring; None: none told).
        """
        z, scores, _ = self.predictive(tokens, midi_note, switches)
        return z, scores

    def switch_values(self, x: torch.Tensor) -> torch.Tensor:
        """Parameter vectors ``(..., P)`` -> their switches ``(..., S)`` as told to the decoder: +1 on, -1 off."""
        return torch.where(x[..., self.switch_params] > 0.5, 1.0, -1.0).to(x.dtype)

    def switches_of(self, z: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``(..., action_dim)`` -> the switches they decode to ``(..., S)``: +1 on, -1 off."""
        return torch.where(z[..., self.switch_dims] > 0, 1.0, -1.0).to(z.dtype)

    def predictive(
        self, tokens: torch.Tensor, midi_note: torch.Tensor | None = None, switches: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`hypotheses` and, with ``spread``, the log standard deviation ``(B, K, action_dim)`` of each
        continuous value (``sigmoid(z)``) about the truth when that hypothesis wins (None without)."""
        batch, k = tokens.shape[0], self.num_hypotheses
        if switches is not None:
            switches = self._check_switches(switches, batch)
        memory = self.memory_proj(tokens)
        queries = self.queries.unsqueeze(0).expand(batch, -1, -1)
        if self.note_proj is not None:
            if midi_note is None:
                raise ValueError("this decoder is conditioned on the MIDI note the preset is played at: pass midi_note")
            note = (midi_note.to(tokens.dtype).reshape(-1, 1) - NOTE_CENTRE) / NOTE_SCALE
            queries = queries + self.note_proj(note).unsqueeze(1)
        if self.hypothesis_queries is not None:  # (B, K, groups, dim) -> K independent query sets per sound
            queries = (queries.unsqueeze(1) + self.hypothesis_queries[None, :, None]).flatten(0, 1)
            memory = memory.repeat_interleave(k, 0)
        if switches is not None:
            queries = queries + self.switch_proj(switches.reshape(batch * k, -1)).unsqueeze(1)
        h = self.decoder(queries, memory)  # (B * K, groups, dim)
        z = self._per_group(h, self.heads)
        if switches is not None:  # told switches are decided
            told = switches.reshape(batch * k, -1)
            decided = torch.where(told != 0, told.sign().to(z.dtype) * SURE_LOGIT, z[:, self.switch_dims])
            z = z.index_copy(1, self.switch_dims, decided)
        scores = self.score_head(h.mean(1)).reshape(batch, k) if self.score_head is not None else tokens.new_zeros(batch, 1)
        spread = None
        if self.spread_heads is not None:  # from h detached: learning the spread leaves the prediction as it was
            spread = self._per_group(h.detach(), self.spread_heads).clamp(LOG_SPREAD_MIN, 0.0).reshape(batch, k, self.action_dim)
        return z.reshape(batch, k, self.action_dim), scores, spread

    def _check_switches(self, switches: torch.Tensor, batch: int) -> torch.Tensor:
        """``(B, S)`` or ``(B, K, S)`` told switches -> ``(B, K, S)`` in the switch map's dtype."""
        if self.switch_proj is None:
            raise ValueError("this decoder is not conditioned on on/off switches (DecoderConfig.switch_conditioning)")
        k, s = self.num_hypotheses, len(self.switch_dims)
        if switches.dim() == 2:
            switches = switches.unsqueeze(1).expand(-1, k, -1)
        if tuple(switches.shape) != (batch, k, s):
            raise ValueError(f"switches of shape {tuple(switches.shape)}: expected ({batch}, {s}) or ({batch}, {k}, {s})")
        return switches.to(self.switch_proj.weight.dtype)

    def _per_group(self, h: torch.Tensor, heads: nn.ModuleList) -> torch.Tensor:
        """``(N, groups, dim)`` -> ``(N, action_dim)``: each group's head on its query, in the action layout."""
        z = h.new_zeros(h.shape[0], self.action_dim)
        for g_index, (g, head) in enumerate(zip(self.group_names, heads)):
            z = z.index_copy(1, getattr(self, f"dims_{g}"), head(h[:, g_index]))
        return z

    def forward(self, tokens: torch.Tensor, midi_note: torch.Tensor | None = None, switches: torch.Tensor | None = None) -> torch.Tensor:
        """Raw outputs ``(B, action_dim)`` of the best-scored hypothesis."""
        z, scores = self.hypotheses(tokens, midi_note, switches)
        return z[torch.arange(z.shape[0], device=z.device), scores.argmax(1)]


class SoundMatcher(nn.Module):
    """Encoder + decoder: ``(B, 1, n_mels, frames)`` -> raw outputs ``(B, action_dim)``."""

    def __init__(self, space: ParameterSpace, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        self.space_fingerprint = space.fingerprint
        self.encoder = AudioEncoder(self.config.encoder)
        self.decoder = ParameterDecoder(space, self.config.encoder.embed_dim, self.config.decoder)

    def forward(self, logmel: torch.Tensor, midi_note: torch.Tensor | None = None, switches: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.encoder(logmel), midi_note, switches)

    def hypotheses(
        self, logmel: torch.Tensor, midi_note: torch.Tensor | None = None, switches: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All hypotheses ``(B, K, action_dim)`` and their score logits ``(B, K)``."""
        return self.decoder.hypotheses(self.encoder(logmel), midi_note, switches)

    def predictive(
        self, logmel: torch.Tensor, midi_note: torch.Tensor | None = None, switches: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Hypotheses, scores and (with ``DecoderConfig.spread``) log spreads; see :meth:`ParameterDecoder.predictive`."""
        return self.decoder.predictive(self.encoder(logmel), midi_note, switches)

    def base_weights(self) -> set[str]:
        """Names of the weights that hold the encoder's base file's values (``EncoderConfig.checkpoint``)."""
        return {f"encoder.{n}" for n in self.encoder.from_base}

    def frozen_base_weights(self) -> list[str]:
        """The base file's weights that are not trained (a frozen encoder under LoRA, or one frozen by
        ``train_only``): what an adapter checkpoint leaves out."""
        base = self.base_weights()
        return [n for n, p in self.named_parameters() if n in base and not p.requires_grad]

    @property
    def num_hypotheses(self) -> int:
        return self.decoder.num_hypotheses

    @property
    def note_conditioned(self) -> bool:
        return self.decoder.note_proj is not None

    @property
    def switch_conditioned(self) -> bool:
        return self.decoder.switch_proj is not None

    @staticmethod
    def actions(z: torch.Tensor) -> torch.Tensor:
        """Raw outputs -> env actions in (-1, 1) (see the module docstring)."""
        return torch.tanh(0.5 * z)


def draw_presets(
    z: torch.Tensor,
    space: ParameterSpace,
    n: int,
    generator: torch.Generator | None = None,
    log_spread: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``n`` draws ``(n, *z.shape)`` of raw outputs ``z`` ``(..., action_dim)``: every categorical and on/off
    choice drawn from the distribution its logits define; each continuous value ``sigmoid(z)`` kept, or with
    ``log_spread`` (same shape as ``z``, from ``predictive``) moved by Gaussian noise of that standard
    deviation and clipped to the unit range.

    Why: argmax decoding takes each uncertain choice (a filter model at 40 %, an oscillator on at 55 %) the
    same way every time, and a regression output sits where the decoder expects the truth on average; draws
    from the decoder's own distributions give presets that differ where it is unsure, and rendering them
    lets the closest win (``Matcher.candidates``). Choices are drawn as ``SURE_LOGIT``-sized one-hot
    logits, so ``actions`` and the space decode them exactly as drawn.

    ``temperature`` scales every logit by ``1 / temperature`` and every spread by ``temperature``: below 1
    the draws stay nearer the hypothesis, above 1 they wander further; 0 is argmax decoding.
    """
    if z.shape[-1] != space.action_dim:
        raise ValueError(f"raw outputs of width {z.shape[-1]} do not fit space '{space.name}' (action_dim {space.action_dim})")
    if log_spread is not None and log_spread.shape != z.shape:
        raise ValueError(f"log_spread of shape {tuple(log_spread.shape)} does not match the raw outputs' {tuple(z.shape)}")
    if temperature < 0:
        raise ValueError(f"temperature={temperature}: must be >= 0")
    out = z.unsqueeze(0).repeat(n, *([1] * z.dim()))
    if temperature == 0:
        return out
    for s in space.layout:
        if s.kind is Kind.CATEGORICAL:
            probs = torch.softmax(z[..., s.slice].reshape(-1, s.stop - s.start) / temperature, -1)
            drawn = torch.multinomial(probs, n, replacement=True, generator=generator).T.reshape(n, *z.shape[:-1])
            block = torch.full((*drawn.shape, s.stop - s.start), -SURE_LOGIT, dtype=z.dtype)
            out[..., s.slice] = block.scatter(-1, drawn.unsqueeze(-1), SURE_LOGIT)
        elif s.kind is Kind.TOGGLE:
            on = torch.rand(out[..., s.slice].shape, generator=generator, dtype=z.dtype) < torch.sigmoid(z[..., s.slice] / temperature)
            out[..., s.slice] = torch.where(on, SURE_LOGIT, -SURE_LOGIT)
        elif log_spread is not None:
            noise = torch.randn(out[..., s.slice].shape, generator=generator, dtype=z.dtype) * log_spread[..., s.slice].exp() * temperature
            value = (torch.sigmoid(z[..., s.slice]) + noise).clamp(1e-4, 1.0 - 1e-4)
            out[..., s.slice] = torch.logit(value)
    return out
