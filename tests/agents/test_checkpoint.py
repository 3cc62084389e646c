"""Adapter checkpoints: a frozen pretrained encoder's weights stay in its base file (agents/supervised/checkpoint.py)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agents.cli import main
from agents.supervised.checkpoint import (
    BASE_KEY,
    CONFIG_FILE,
    MODEL_FILE,
    CheckpointError,
    init_weights,
    load_model,
    read_config,
    save_checkpoint,
    standalone,
)
from agents.supervised.model import AudioEncoder, EncoderConfig, ModelConfig, SoundMatcher
from agents.supervised.train import TrainConfig, train
from tests.agents.conftest import TINY_MODEL, tiny_train_config
from tests.conftest import TINY_SPACE


@pytest.fixture
def base_file(tmp_path):
    """A tiny ViT's weights in AudioMAE's file layout: the stand-in for pretrained.pth."""
    torch.manual_seed(7)
    vit = AudioEncoder(EncoderConfig(**TINY_MODEL["encoder"])).vit
    path = tmp_path / "base" / "pretrained.pth"
    path.parent.mkdir()
    torch.save({"model": vit.state_dict()}, path)
    return path


def over_base(base_file, **encoder) -> dict:
    return {**TINY_MODEL, "encoder": {**TINY_MODEL["encoder"], "checkpoint": str(base_file), **encoder}}


def trained_over_base(tiny_space, base_file, freeze: str) -> SoundMatcher:
    """A model over ``base_file`` whose trained weights moved off their start: LoRA adapters, or the decoder
    alone (``train_only``) over a fully loaded encoder."""
    torch.manual_seed(0)
    lora = {"lora_rank": 4, "lora_blocks": 1} if freeze == "lora" else {}
    model = SoundMatcher(tiny_space, ModelConfig.from_dict(over_base(base_file, **lora)))
    if freeze == "train_only":
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("decoder."))
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def outputs(model: SoundMatcher) -> torch.Tensor:
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    return model(x, torch.tensor([55.0, 67.0]))


@pytest.mark.parametrize("freeze", ["lora", "train_only"])
def test_a_frozen_base_encoder_is_recorded_not_stored_and_loads_back_from_its_file(tmp_path, tiny_space, base_file, freeze):
    model = trained_over_base(tiny_space, base_file, freeze)
    frozen = model.frozen_base_weights()
    assert frozen and all(k.startswith("encoder.vit.") and ".down." not in k and ".up." not in k for k in frozen)
    folder = save_checkpoint(tmp_path / "adapter", model, TINY_SPACE)
    stored = load_file(str(folder / MODEL_FILE))
    assert not set(frozen) & set(stored) and set(stored) | set(frozen) == set(model.state_dict())
    record = read_config(folder)[BASE_KEY]
    assert record["checkpoint"] == str(base_file.resolve()) and record["weights"] == len(frozen)
    full = save_checkpoint(tmp_path / "full", model, TINY_SPACE, base_weights=True)
    assert set(load_file(str(full / MODEL_FILE))) == set(model.state_dict()) and BASE_KEY not in read_config(full)
    assert (folder / MODEL_FILE).stat().st_size < (full / MODEL_FILE).stat().st_size
    loaded, _, _ = load_model(folder, tiny_space)
    assert torch.equal(outputs(loaded), outputs(model))
    if freeze == "lora":  # built with LoRA, the encoder is frozen again (train_only is a training run's setting)
        again = save_checkpoint(tmp_path / "again", loaded, TINY_SPACE)
        assert set(load_file(str(again / MODEL_FILE))) == set(stored) and read_config(again)[BASE_KEY] == record


def test_an_adapter_checkpoint_finds_its_base_moved_and_refuses_other_weights(tmp_path, tiny_space, base_file):
    model = trained_over_base(tiny_space, base_file, "lora")
    folder = save_checkpoint(tmp_path / "adapter", model, TINY_SPACE)
    moved = base_file.rename(tmp_path / "moved.pth")
    with pytest.raises(
        CheckpointError, match=f"{folder} holds its trained weights only, over the base encoder {base_file.resolve()} .*does not exist; pass base_encoder="
    ):
        load_model(folder)
    loaded, _, _ = load_model(folder, base_encoder=moved)
    assert torch.equal(outputs(loaded), outputs(model))
    other = tmp_path / "other.pth"
    state = torch.load(moved, weights_only=True)
    state["model"]["blocks.0.attn.qkv.weight"] += 1e-3
    torch.save(state, other)
    with pytest.raises(CheckpointError, match=f"{other} is not the base encoder {folder} was trained over: its sha256 is"):
        load_model(folder, base_encoder=other)
    # A standalone copy holds every weight and loads with no base file at all.
    alone = standalone(folder, tmp_path / "alone", base_encoder=moved)
    moved.unlink()
    meta = read_config(alone)
    assert BASE_KEY not in meta and meta["standalone_of"] == str(folder) and not (alone / "optimizer.pt").exists()
    assert torch.equal(outputs(load_model(alone, tiny_space)[0]), outputs(model))
    with pytest.raises(FileExistsError, match="exists; choose a new folder"):
        standalone(alone, alone)


def test_fine_tuning_from_an_adapter_checkpoint_needs_the_same_base(tmp_path, tiny_space, base_file):
    model = trained_over_base(tiny_space, base_file, "lora")
    folder = save_checkpoint(tmp_path / "adapter", model, TINY_SPACE)
    torch.manual_seed(5)
    same = SoundMatcher(tiny_space, ModelConfig.from_dict(over_base(base_file, lora_rank=4, lora_blocks=1)))
    init_weights(same, folder)
    assert torch.equal(outputs(same.eval()), outputs(model))
    assert set(same.frozen_base_weights()) == set(model.frozen_base_weights())  # still the base's: saved as an adapter again
    none = SoundMatcher(tiny_space, ModelConfig.from_dict({**TINY_MODEL, "encoder": {**TINY_MODEL["encoder"], "lora_rank": 4, "lora_blocks": 1}}))
    with pytest.raises(CheckpointError, match="set this model's encoder checkpoint to that file"):
        init_weights(none, folder)


def test_a_full_checkpoint_loaded_over_the_base_is_saved_whole(tmp_path, tiny_space, base_file):
    """Fine-tuned from a checkpoint that stores the encoder, the encoder holds that checkpoint's weights, not the base file's."""
    model = trained_over_base(tiny_space, base_file, "lora")
    full = save_checkpoint(tmp_path / "full", model, TINY_SPACE, base_weights=True)
    fine_tuned = SoundMatcher(tiny_space, ModelConfig.from_dict(over_base(base_file, lora_rank=4, lora_blocks=1)))
    init_weights(fine_tuned, full)
    assert fine_tuned.frozen_base_weights() == []  # the base file was read, but the encoder holds the checkpoint's weights
    assert BASE_KEY not in read_config(save_checkpoint(tmp_path / "again", fine_tuned, TINY_SPACE))


def test_training_over_a_base_encoder_writes_adapters_resumes_and_matches(tmp_path, tiny_space, tiny_dataset, base_file, capsys):
    from agents.match import Matcher

    model = over_base(base_file, lora_rank=4, lora_blocks=1)
    config = tiny_train_config(tiny_dataset, tmp_path / "run", model=model)
    train(config, log=lambda *_: None)
    last = tmp_path / "run" / "last"
    assert read_config(last)[BASE_KEY]["sha256"]
    train(TrainConfig(**{**config.__dict__, "steps": 6}), resume=True, log=lambda *_: None)
    assert read_config(last)["step"] == 6
    whole = tiny_train_config(tiny_dataset, tmp_path / "whole", model=model, steps=2, val_every=2, save_base_weights=True)
    train(whole, log=lambda *_: None)
    assert BASE_KEY not in read_config(tmp_path / "whole" / "last")
    target = np.random.default_rng(0).standard_normal((1, 11025)).astype(np.float32) * 0.1
    moved = base_file.rename(tmp_path / "moved.pth")
    assert np.isfinite(Matcher(last, base_encoder=moved).match(target, midi_note=60, draws=0).distance)
    # The command line: match refuses the missing base by name, then finds it with --base-encoder; standalone copies.
    wav = tmp_path / "target.wav"
    from vital_gym.audio import write_wav

    write_wav(wav, target, 22050)
    out = tmp_path / "out.vital"
    assert main(["match", str(wav), "-o", str(out), "--checkpoint", str(last), "--draws", "0"]) == 2
    assert "does not exist; pass base_encoder=" in capsys.readouterr().err and not out.exists()
    assert main(["match", str(wav), "-o", str(out), "--checkpoint", str(last), "--draws", "0", "--base-encoder", str(moved)]) == 0
    assert out.is_file()
    assert main(["checkpoint", "standalone", str(last), "--out", str(tmp_path / "alone"), "--base-encoder", str(moved)]) == 0
    assert "every weight" in capsys.readouterr().out
    assert main(["checkpoint", "standalone", str(last), "--out", str(tmp_path / "alone"), "--base-encoder", str(moved)]) == 2
    assert "alone exists; choose a new folder" in capsys.readouterr().err
    assert json.loads((tmp_path / "alone" / CONFIG_FILE).read_text())["step"] == 6


def test_a_ppo_policy_warm_started_from_adapters_loads_without_the_base_file(tmp_path, tiny_space, base_file):
    """The policy file holds every weight; the supervised checkpoint's base file is not read again."""
    from stable_baselines3 import PPO

    from agents.ppo import SoundMatcherPolicy
    from agents.ppo.train import RLConfig, load_policy, policy_source, save_policy
    from tests.agents.test_dataset import tiny_config
    from vital_gym.envs import VitalMatchEnv

    folder = save_checkpoint(tmp_path / "adapter", trained_over_base(tiny_space, base_file, "lora"), TINY_SPACE)
    env = VitalMatchEnv(space=tiny_space, render=tiny_config().render, observation=tiny_config().observation)
    policy_kwargs = {"checkpoint": str(folder), "midi_note": 60}
    model = PPO(SoundMatcherPolicy, env, policy_kwargs=policy_kwargs, n_steps=4, batch_size=4, device="cpu")
    config = RLConfig(policy_kwargs=policy_kwargs, env_kwargs={"space": TINY_SPACE})
    saved = save_policy(tmp_path / "policy", model, config, {**policy_source(policy_kwargs, {}), "midi_note": 60}, {})
    base_file.unlink()
    loaded = load_policy(saved, env)
    obs = torch.from_numpy(env.reset(seed=1)[0])[None]
    with torch.no_grad():
        assert torch.allclose(loaded.policy.get_distribution(obs).mode(), model.policy.get_distribution(obs).mode(), atol=1e-6)
