"""Function pipelines (``fn: [trim, {codelist: order_item_action, system: siebel}]``), bound at compile time.

A step is a function name, or a mapping whose first key is the function name: its value is the first
argument (a list gives several, a mapping gives keyword arguments) and the other keys are keyword
arguments. An argument written ``$name`` is the variable ``name`` from the rule's ``let:`` scope,
resolved per message; everything else is checked and bound once, when the mapping is compiled.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from esb.registry import did_you_mean
from esb.transforms.functions import FUNCTIONS, FnContext

_VAR = re.compile(r"^\$([A-Za-z_]\w*)$")


@dataclass(frozen=True)
class Step:
    """One bound pipeline step."""

    name: str
    call: Callable[..., Any]
    none_ok: bool
    var_args: tuple[tuple[int | str, str], ...] = ()
    #: the function's arguments after the value as written (``$name`` for a variable), ctx included
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    #: the registered function itself (``call`` is it with ``args`` and ``kwargs`` bound)
    func: Callable[..., Any] | None = None


def split_step(spec: Any) -> tuple[str, list[Any], dict[str, Any]]:
    """Split one step as written into its function name, positional and keyword arguments."""
    if isinstance(spec, str):
        return spec, [], {}
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"a pipeline step is a function name or a mapping {{name: argument}}, not {spec!r}")
    items = list(spec.items())
    name, first = items[0]
    kwargs = dict(items[1:])
    if isinstance(first, dict):
        kwargs = {**first, **kwargs}
        args: list[Any] = []
    elif isinstance(first, list):
        args = list(first)
    elif first is None:
        args = []
    else:
        args = [first]
    return str(name), args, kwargs


def compile_step(spec: Any, ctx: FnContext) -> Step:
    """Return the bound step for ``spec``; ValueError (with a suggestion) for anything wrong in it."""
    name, args, kwargs = split_step(spec)
    try:
        fdef = FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown function {name!r}{did_you_mean(name, list(FUNCTIONS))}") from None
    try:
        inspect.signature(fdef.func).bind(None, *args, **kwargs, **({"ctx": ctx} if fdef.needs_ctx else {}))
    except TypeError as exc:
        raise ValueError(f"function {name!r}: {exc}") from None
    if fdef.check is not None:
        fdef.check(ctx, *args, **kwargs)
    var_args: list[tuple[int | str, str]] = []
    for index, arg in enumerate(args):
        if isinstance(arg, str) and (m := _VAR.match(arg)):
            var_args.append((index, m.group(1)))
    for key, arg in kwargs.items():
        if isinstance(arg, str) and (m := _VAR.match(arg)):
            var_args.append((key, m.group(1)))
    if fdef.needs_ctx:
        kwargs["ctx"] = ctx
    if var_args:
        bound_args, bound_kwargs = tuple(args), tuple(kwargs.items())
        return Step(name, fdef.func, fdef.none_ok, tuple(var_args), bound_args, bound_kwargs, fdef.func)
    call = functools.partial(fdef.func, **kwargs) if kwargs else fdef.func
    if args:
        bound = call
        call = lambda value, _f=bound, _a=tuple(args): _f(value, *_a)  # noqa: E731
    return Step(name, call, fdef.none_ok, (), tuple(args), tuple(kwargs.items()), fdef.func)


def compile_pipeline(spec: Any, ctx: FnContext) -> list[Step]:
    """Compile ``fn:`` (one step or a list of steps)."""
    steps = spec if isinstance(spec, list) else [spec]
    return [compile_step(s, ctx) for s in steps]


def run_pipeline(steps: list[Step], value: Any, scope: Mapping[str, Any]) -> Any:
    """Run ``steps`` over ``value``; a missing value skips every step that is not ``none_ok``."""
    for step in steps:
        if value is None and not step.none_ok:
            continue
        value = _call_with_vars(step, value, scope) if step.var_args else step.call(value)
    return value


def _call_with_vars(step: Step, value: Any, scope: Mapping[str, Any]) -> Any:
    args = list(step.args)
    kwargs = dict(step.kwargs)
    for where, var in step.var_args:
        if var not in scope:
            raise ValueError(f"function {step.name!r}: variable ${var} is not defined (define it under let:)")
        if isinstance(where, int):
            args[where] = scope[var]
        else:
            kwargs[where] = scope[var]
    return step.call(value, *args, **kwargs)
