"""Agents for VitalMatch-v0: dataset generation, the supervised sound matcher and its critic, PPO, the
benchmark, and the ``vital-gym`` command (:mod:`agents.cli`). Everything here builds on :mod:`vital_gym`.
"""
