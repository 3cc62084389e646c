"""Agents for VitalMatch-v0: dataset generation, the supervised warm start, PPO and the benchmark.

Empty until those issues land; everything here builds on :mod:`vital_gym`.
"""
