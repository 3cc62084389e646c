"""The benchmark: fixed test sets, the methods compared (Syntheon among them), metrics and the report."""

from agents.benchmark.run import BenchmarkConfig, run_benchmark

__all__ = ["BenchmarkConfig", "run_benchmark"]
