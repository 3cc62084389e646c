"""An SB3 ``VecEnv`` whose environments live in Ray actors, on any node of a cluster.

``SubprocVecEnv`` keeps its environments in processes of this machine; :class:`RayVecEnv` answers the same
commands (step with auto-reset, reset with seeds and options, render, attributes, methods, wrappers) from
one Ray actor per environment, each holding one CPU of the cluster, so ``vital-gym ppo --ray ADDRESS``
collects rollouts on many machines while the learner stays in this process. Steps are sent to every actor
before any answer is awaited, so the environments render side by side.

    venv = RayVecEnv([make_env_fn(...) for _ in range(16)], address="auto")
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from agents.cluster import cluster_cpus, connect


class EnvActor:
    """One environment, built in the actor from ``env_fn``; the commands of SB3's ``SubprocVecEnv`` worker."""

    def __init__(self, env_fn: Callable[[], gym.Env]):
        self.env = env_fn()

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        return self.env.observation_space, self.env.action_space

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, dict[str, Any], dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        done = terminated or truncated
        info["TimeLimit.truncated"] = truncated and not terminated
        reset_info: dict[str, Any] = {}
        if done:  # SB3's convention: the last observation in info, and the next episode's first returned
            info["terminal_observation"] = observation
            observation, reset_info = self.env.reset()
        return observation, reward, done, info, reset_info

    def reset(self, seed: int | None, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return self.env.reset(seed=seed, **({"options": options} if options else {}))

    def render(self) -> np.ndarray | None:
        return self.env.render()

    def get_attr(self, name: str) -> Any:
        return self.env.get_wrapper_attr(name)

    def has_attr(self, name: str) -> bool:
        try:
            self.env.get_wrapper_attr(name)
        except AttributeError:
            return False
        return True

    def set_attr(self, name: str, value: Any) -> None:
        setattr(self.env, name, value)

    def env_method(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        return self.env.get_wrapper_attr(name)(*args, **kwargs)

    def is_wrapped(self, wrapper_class: type[gym.Wrapper]) -> bool:
        from stable_baselines3.common.env_util import is_wrapped

        return is_wrapped(self.env, wrapper_class)

    def close(self) -> None:
        self.env.close()


class RayVecEnv(VecEnv):
    """``env_fns[i]()`` built in a Ray actor of ``num_cpus`` CPUs; ``address`` as :func:`agents.cluster.connect`."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], address: str | None = None, num_cpus: float = 1.0):
        self.ray = connect(address)
        needed, available = len(env_fns) * num_cpus, cluster_cpus(self.ray)
        if needed > available:
            warnings.warn(
                f"RayVecEnv: {len(env_fns)} environments need {needed:g} CPUs and the cluster has {available}: it waits until enough nodes join", stacklevel=2
            )
        actor = self.ray.remote(num_cpus=num_cpus)(EnvActor)
        self.actors = [actor.remote(fn) for fn in env_fns]
        observation_space, action_space = self.ray.get(self.actors[0].spaces.remote())
        self.pending: list[Any] | None = None
        self.closed = False
        super().__init__(len(env_fns), observation_space, action_space)

    def step_async(self, actions: np.ndarray) -> None:
        self.pending = [a.step.remote(action) for a, action in zip(self.actors, actions, strict=True)]

    def step_wait(self) -> VecEnvStepReturn:
        results, self.pending = self.ray.get(self.pending), None
        obs, rewards, dones, infos, self.reset_infos = zip(*results, strict=True)
        return stack(obs, self.observation_space), np.stack(rewards), np.stack(dones), list(infos)

    def reset(self) -> VecEnvObs:
        calls = [a.reset.remote(self._seeds[i], self._options[i]) for i, a in enumerate(self.actors)]
        obs, self.reset_infos = zip(*self.ray.get(calls), strict=True)
        self._reset_seeds()  # seeds and options are used once, as in SB3's own vector envs
        self._reset_options()
        return stack(obs, self.observation_space)

    def close(self) -> None:
        if self.closed:
            return
        if self.pending is not None:
            self.ray.get(self.pending)
        self.ray.get([a.close.remote() for a in self.actors])
        for a in self.actors:
            self.ray.kill(a)
        self.closed = True

    def get_images(self) -> Sequence[np.ndarray | None]:
        return self.ray.get([a.render.remote() for a in self.actors])

    def has_attr(self, attr_name: str) -> bool:
        return all(self.ray.get([a.has_attr.remote(attr_name) for a in self.actors]))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self.ray.get([self.actors[i].get_attr.remote(attr_name) for i in self._get_indices(indices)])

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self.ray.get([self.actors[i].set_attr.remote(attr_name, value) for i in self._get_indices(indices)])

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        return self.ray.get([self.actors[i].env_method.remote(method_name, method_args, method_kwargs) for i in self._get_indices(indices)])

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self.ray.get([self.actors[i].is_wrapped.remote(wrapper_class) for i in self._get_indices(indices)])


def stack(observations: Sequence[Any], space: gym.Space) -> VecEnvObs:
    """One observation per environment -> a batch (a dict of batches for a ``Dict`` space)."""
    if isinstance(space, spaces.Dict):
        return {k: np.stack([o[k] for o in observations]) for k in space.spaces}
    return np.stack(observations)
