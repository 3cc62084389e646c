"""Where vital-gym finds its configuration files.

The configuration files ship inside the package: the repository's ``configs/`` folder is installed as the
package ``vital_gym.configs``, read through :mod:`importlib.resources`, so an installed wheel finds them
wherever it lives. It holds one folder per kind of file:

* ``params/``: parameter spaces (``core``, ``full``), read by :meth:`vital_gym.params.ParameterSpace.load`;
* ``env/``: keyword arguments of ``VitalMatch-v0`` (:func:`vital_gym.envs.load_env_config`);
* ``dataset/``: how a dataset is drawn (``vital-gym dataset generate --config core``);
* ``train/``, ``rl/``: supervised and PPO training settings (``vital-gym train``, ``vital-gym ppo``);
* ``sensitivity/``: measured per-parameter loss weights (``vital-gym sensitivity``);
* ``wavetables/``: wavetable banks (``.npz``, :mod:`vital_gym.wavetables`) that spaces choose tables from.

Anywhere a config is asked for, a name (``core``) looks it up in those folders and a path to a file
(``my/space.yaml``) reads that file. A user's own folder, laid out the same way, is named by the
``VITAL_GYM_CONFIG_DIR`` environment variable: it is searched before the shipped one, so a file there
replaces the shipped file of the same kind and name and adds new names beside them.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

CONFIG_DIR_ENV = "VITAL_GYM_CONFIG_DIR"
CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".npz")
KINDS = {  # the folders of a config directory, and what each holds (for messages)
    "params": "parameter space",
    "env": "env config",
    "dataset": "dataset config",
    "train": "training config",
    "rl": "RL config",
    "sensitivity": "sensitivity file",
    "wavetables": "wavetable bank",
}


def shipped_config_dir() -> Path:
    """The configuration folder installed with the package."""
    return Path(str(files("vital_gym.configs")))


def config_dirs() -> list[Path]:
    """The folders searched for a config by name, first match wins: ``$VITAL_GYM_CONFIG_DIR`` (if set),
    then the shipped folder."""
    user = os.environ.get(CONFIG_DIR_ENV)
    return ([Path(user).expanduser()] if user else []) + [shipped_config_dir()]


def config_names(kind: str) -> list[str]:
    """Every config name of ``kind`` (``"params"``, ``"env"``, ``"dataset"``, ...) in the searched folders."""
    return sorted({p.stem for d in config_dirs() for p in (d / kind).glob("*") if p.suffix in CONFIG_SUFFIXES})


def find_config(kind: str, name_or_path: str | Path) -> Path:
    """The file of a config of ``kind``: ``name_or_path`` itself when it is an existing file or ends in a
    config suffix, else the first ``<dir>/<kind>/<name>.{yaml,yml,json,npz}`` of :func:`config_dirs`.

    Raises FileNotFoundError naming what was asked for, where it looked and what exists."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.suffix in CONFIG_SUFFIXES or len(path.parts) > 1:
        raise FileNotFoundError(f"{KINDS.get(kind, kind)} {str(name_or_path)!r}: no such file")
    for folder in config_dirs():
        for suffix in CONFIG_SUFFIXES:
            candidate = folder / kind / f"{name_or_path}{suffix}"
            if candidate.is_file():
                return candidate
    searched = ", ".join(str(d / kind) for d in config_dirs())
    raise FileNotFoundError(f"{KINDS.get(kind, kind)} {str(name_or_path)!r} not found (searched {searched}); available: {config_names(kind)}")
