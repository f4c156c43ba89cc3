"""Route steps as processors: ``Message -> list[Message]`` (an empty list means filtered out).

The processors are leaves that step kinds (:mod:`esb.config.steps`) build; :mod:`esb.runtime.pipeline`
runs a route's steps in order. Nothing is imported here, so a step kind can import a processor module
without loading the pipeline (which reads the step registry).
"""
