"""Validation cost of a typical product order, per option, in one run.

    .venv/bin/python bench/validation_bench.py [--seconds 0.5]

Prints µs per validation for each option and the ratio to the baseline measured in the same run
(python-jsonschema with a reused validator, the reference implementation). The hop budget is about
1 ms, so the hot path should stay under ~100 µs; the figures on this machine go in bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs

from esb.exceptions import SchemaValidationError
from esb.model.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[1] / "canonical_model"
NAME = "product_order.v1"


def per_call_us(fn: Callable[[], Any], seconds: float) -> float:
    """Return the mean µs per call of ``fn`` over about ``seconds`` (after a warm-up)."""
    for _ in range(20):
        fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            fn()
        n += 50
    return elapsed / n * 1e6


def main() -> None:
    """Measure every option and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time spent per option")
    seconds = parser.parse_args().seconds

    registry = ModelRegistry(ROOT)
    schema = registry.schema(NAME)
    valid = json.loads((ROOT / "examples" / NAME / "valid" / "home_bundle_new.json").read_text("utf-8"))
    invalid = json.loads(
        (ROOT / "examples" / NAME / "invalid" / "item_action_unknown.json").read_text("utf-8")
    )
    hot = registry.validator(NAME)
    reference = registry.reference_validator(NAME)
    ref_validator = reference._validator  # the python-jsonschema validator, reused
    raw_rs = hot._validator  # jsonschema-rs validator without our wrapper

    def hot_validate_invalid() -> None:
        with contextlib.suppress(SchemaValidationError):
            hot.validate(invalid)

    options: list[tuple[str, Callable[[], Any]]] = [
        ("python-jsonschema, reused validator, formats (baseline)", lambda: ref_validator.validate(valid)),
        ("python-jsonschema, iter_errors (all errors)", lambda: list(ref_validator.iter_errors(valid))),
        ("jsonschema-rs is_valid", lambda: raw_rs.is_valid(valid)),
        ("jsonschema-rs iter_errors (all errors)", lambda: list(raw_rs.iter_errors(valid))),
        ("HOT PATH CanonicalValidator.validate (valid doc)", lambda: hot.validate(valid)),
        ("HOT PATH CanonicalValidator.validate (invalid doc, errors+paths)", hot_validate_invalid),
    ]
    once = (
        "python-jsonschema validate() (re-checks schema each call)",
        lambda: jsonschema.validate(
            valid,
            schema,
            cls=jsonschema.Draft202012Validator,
            format_checker=jsonschema.FormatChecker(),
            registry=ref_validator._registry,
        ),
    )
    results = [(label, per_call_us(fn, seconds)) for label, fn in options]
    results.insert(1, (once[0], per_call_us(once[1], min(seconds, 0.3))))
    compile_us = per_call_us(
        lambda: jsonschema_rs.validator_for(schema, registry=_registry(registry), validate_formats=True), 0.2
    )
    baseline = results[0][1]
    size = len(json.dumps(valid, ensure_ascii=False).encode())
    print(f"typical product order: {NAME}, home bundle with 4 items, {size} bytes of JSON")
    print(f"{'option':66} {'µs/validation':>14} {'vs baseline':>12}")
    for label, us in results:
        print(f"{label:66} {us:14.1f} {baseline / us:11.1f}x")
    print(f"{'(compile once: jsonschema-rs validator_for with registry)':66} {compile_us:14.1f}")
    hot_us = dict(results)["HOT PATH CanonicalValidator.validate (valid doc)"]
    print(f"hot path share of a 1 ms hop budget: {hot_us / 1000:.1%} (target < 10%)")


def _registry(registry: ModelRegistry) -> jsonschema_rs.Registry:
    from esb.model.validation import referenced_resources

    needed = referenced_resources(registry.schema(NAME), registry.resources())
    return jsonschema_rs.Registry(list(needed.items()))


if __name__ == "__main__":
    main()
