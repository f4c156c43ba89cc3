"""Rule blocks compiled to Python functions: the runner's work per message without its per-rule decisions.

:class:`esb.transforms.rules.Runner` interprets each rule on every message (is there a ``when``, a
variable, several sources, a pipeline, a default...). :func:`compile_block` takes those decisions once,
when the mapping is loaded, and writes one Python function per block (:mod:`esb.transforms.plansource`
writes its source): the rules' sources, defaults, pipeline steps and target-path setters inline, in the
rules' order, with no per-rule call chain. XML ``field:`` sources are lxml ``get`` calls and look-ups in
one index of the node's children; plain JMESPath names are ``dict.get``.

The functions have no error path of their own: when anything goes wrong in a block (a source or a
function raises, a required value is missing) the whole block is run again through the runner, which
raises its usual MappingError naming the rule and the source path (getters and mapping functions are
pure, so the second run fails where the first did). tests/unit/test_hot_path.py checks that both paths
give the same outputs and the same errors over the repository's orders, broken orders and every mapping
test case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from esb.transforms.plansource import BlockSource
from esb.transforms.rules import Block, Loc, Runner

#: A compiled block: (context node, its location, the variables in scope) -> the object it builds.
BlockFn = Callable[[Any, Loc, dict[str, Any]], dict[str, Any]]


def compile_block(runner: Runner, block: Block) -> BlockFn:
    """Return the function evaluating ``block`` as ``runner.block`` does (same output, same errors)."""
    source = BlockSource(runner)
    name = source.block(block)
    return source.build(name)
