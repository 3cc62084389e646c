"""Size and load time of a checkpoint over a frozen pretrained encoder: the adapter (the default) against
a standalone copy holding every weight.

    python scripts/bench/bench_checkpoint.py                                   # configs/train/supervised_audiomae.yaml
    python scripts/bench/bench_checkpoint.py --config supervised_audiomae --repeats 3

The released AudioMAE file cannot be fetched here, so the base is a stand-in of random weights in its
layout (``{"model": ...}``, ViT-B/16 over 1024 x 128 with the MAE decoder's keys), written to a temporary
folder and read as the real file would be. Loading an adapter reads that file and its SHA-256 again; both
are part of the time printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml

from agents.supervised.checkpoint import MODEL_FILE, load_model, save_checkpoint
from agents.supervised.model import ModelConfig, SoundMatcher
from vital_gym.params import ParameterSpace
from vital_gym.resources import find_config


def write_stand_in(path: Path, config: ModelConfig) -> Path:
    """Random ViT weights of the encoder's width and depth in AudioMAE's file layout (1024 frames)."""
    from timm.models.vision_transformer import VisionTransformer

    e = config.encoder
    vit = VisionTransformer(
        img_size=(1024, e.n_mels),
        patch_size=e.patch_size,
        in_chans=1,
        num_classes=0,
        global_pool="",
        embed_dim=e.embed_dim,
        depth=e.depth,
        num_heads=e.num_heads,
        mlp_ratio=e.mlp_ratio,
    )
    state = {**vit.state_dict(), "decoder_embed.weight": torch.zeros(512, e.embed_dim), "mask_token": torch.zeros(1, 1, 512)}
    torch.save({"model": state}, path)
    return path


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="supervised_audiomae", help="a training config (name or YAML) with a LoRA encoder")
    ap.add_argument("--space", default="core")
    ap.add_argument("--repeats", type=int, default=3, help="loads timed per checkpoint (the median is printed)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    space = ParameterSpace.load(args.space)
    model_dict = yaml.safe_load(find_config("train", args.config).read_text())["model"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = write_stand_in(tmp / "pretrained.pth", ModelConfig.from_dict(model_dict))
        model_dict["encoder"]["checkpoint"] = str(base)
        model = SoundMatcher(space, ModelConfig.from_dict(model_dict)).eval()
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        frozen = len(model.frozen_base_weights())
        print(
            f"{args.config}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M weights, {trained / 1e6:.2f}M trained, "
            f"{frozen} tensors frozen from the base file ({base.stat().st_size / 1e6:.0f} MB)"
        )
        rows = []
        for name, whole in (("adapter (default)", False), ("standalone", True)):
            folder = tmp / name.split()[0]
            save_s = timed(lambda folder=folder, whole=whole: save_checkpoint(folder, model, args.space, base_weights=whole), 1)
            load_s = timed(lambda folder=folder: load_model(folder), args.repeats)
            rows.append((name, (folder / MODEL_FILE).stat().st_size / 1e6, save_s, load_s))
        x, note = torch.rand(1, 1, model.config.encoder.n_mels, 198), torch.tensor([60.0])  # a 2 s clip's frames
        same = torch.equal(load_model(tmp / "adapter")[0](x, note), load_model(tmp / "standalone")[0](x, note))
    print(f"{'checkpoint':<20}{'model.safetensors':>18}{'save':>9}{'load':>9}")
    for name, mb, save_s, load_s in rows:
        print(f"{name:<20}{mb:>15.3f} MB{save_s:>8.2f}s{load_s:>8.2f}s")
    print(f"both give the same outputs: {same}")


if __name__ == "__main__":
    main()
