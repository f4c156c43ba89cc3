"""Route steps as processors: ``Message -> list[Message]`` (an empty list means filtered out)."""

from esb.processors.pipeline import BusinessKeys, Pipeline, build_pipeline

__all__ = ["BusinessKeys", "Pipeline", "build_pipeline"]
