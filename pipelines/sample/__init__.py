"""A deterministic, realistic sample CRM extract (contract v1) for demos, tests and benchmarks."""

from pipelines.sample.generator import SampleSummary, generate_sample

__all__ = ["SampleSummary", "generate_sample"]
