"""Ray, optional: joining a cluster for the commands that can spread their renders over one.

Every command that renders in parallel takes ``--ray [ADDRESS]``: ``vital-gym dataset generate`` (one Ray
task per shard), ``vital-gym benchmark`` (one task per item and method) and ``vital-gym ppo``
(environments in Ray actors, :class:`agents.ppo.ray_vec_env.RayVecEnv`). Without an address Ray starts on this machine, or joins
the cluster that ``RAY_ADDRESS`` names; ``auto`` joins the cluster this machine is a node of;
``ray://HOST:10001`` connects through Ray Client. Every node needs the same vital-gym installed
(``pip install "vital-gym[ray]"``); docs/cluster.md has the set-up.
"""

from __future__ import annotations

from types import ModuleType

INSTALL = 'pip install "vital-gym[ray]"'


def import_ray() -> ModuleType:
    """The ``ray`` module, or an error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ModuleNotFoundError(f"running on Ray needs Ray, an optional extra: {INSTALL}", name="ray") from None
    return ray


def connect(address: str | None = None) -> ModuleType:
    """Join (or start) the Ray cluster at ``address`` unless this process already has; returns ``ray``."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    return ray


def cluster_cpus(ray: ModuleType) -> int:
    """The CPUs the cluster offers (one render at a time per CPU)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
