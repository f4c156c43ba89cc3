"""The Python source of a compiled rule block (see :mod:`esb.transforms.plan`).

Each block becomes one function ``(node, loc, scope0) -> dict`` whose body evaluates the block's rules in
order, as :meth:`esb.transforms.rules.Runner.block` does, and whose ``except`` clause runs the block again
through the runner (the reference, which raises the MappingError). Objects the code needs (getters,
bound pipeline steps, defaults, nested blocks) are passed to it by name in the function's globals; only
names, tags and keys that are plain strings or integers appear in the text, through ``repr``.

Locals of a generated function: ``node``, ``loc``, ``scope0`` (the caller's variables), ``scope`` (with
the block's ``let`` values), ``kids`` (the children index of an XML node), ``out``; ``v`` is the value of
the rule being evaluated, ``w`` the objects a dotted JMESPath name walks, ``d`` the dict or list a setter
walks, ``res``/``i``/``item`` a ``foreach``.
"""

from __future__ import annotations

import copy
import itertools
import keyword
from collections.abc import Callable
from typing import Any

from esb.transforms.pipeline import Step, run_pipeline
from esb.transforms.rules import Block, Rule, Runner
from esb.transforms.xpathdialect import children, node_text

#: Fields a block reads before its node's children are indexed once instead of searched for each.
INDEX_FROM = 2


class Fallback(Exception):  # noqa: N818 - a signal, not an error: the runner raises the error
    """Raised inside a generated block for a value the runner refuses (a required one missing)."""


class BlockSource:
    """Writes the functions of one mapping's blocks (a block and the ``foreach`` blocks inside it)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "_text": node_text, "_children": children, "_deepcopy": copy.deepcopy, "_Fallback": Fallback,
            "_run_pipeline": run_pipeline, "_dict": dict, "_type": type,
        }  # fmt: skip
        self._count = 0

    def bind(self, obj: Any, prefix: str = "o") -> str:
        """Return a global name under which the generated code sees ``obj``."""
        self._count += 1
        name = f"_{prefix}{self._count}"
        self.names[name] = obj
        return name

    def build(self, name: str) -> Callable[..., Any]:
        """Compile the written source and return the function ``name`` from it."""
        text = "\n".join(self.lines) + "\n"
        code = compile(text, f"<rule block {self.runner.transform}>", "exec")
        exec(code, self.names)  # noqa: S102 - our own source: names and literals are repr()'d above
        func: Callable[..., Any] = self.names[name]
        func.source = text  # type: ignore[attr-defined]  # to read when debugging a mapping
        return func

    # ---- blocks ------------------------------------------------------------------------------------------
    def block(self, block: Block) -> str:
        """Write the function of ``block`` (and of the blocks nested in it); return its name."""
        inner = {id(r): self.block(r.block) for r in block.rules if r.block is not None}
        name = self.bind(None, "block")
        runner, slow = self.bind(self.runner, "runner"), self.bind(block, "rules")
        tags = [t for r in (*block.lets, *block.rules) if (t := _field_tag(r)) is not None]
        body: list[str] = []
        fields: dict[str, str] | None = None
        if len(tags) >= INDEX_FROM:
            body += ["kids = _children(node)", "if kids is None:", "    raise _Fallback"]
            body.append("attrs = _dict(node.items())")  # one call for all the attributes
            fields = {}
            for tag in _read_tags(block):  # each field read once, before the rules (reads cannot fail)
                fields[tag] = local = f"f{len(fields)}"
                body += [
                    f"e = kids.get({tag!r})",
                    f"{local} = attrs.get({tag!r}) or "
                    "(None if e is None else (e.text if not len(e) else _text(e)) or None)",
                ]
        body.append("scope = _dict(scope0)" if block.lets else "scope = scope0")
        for let in block.lets:
            body += self.value(let, fields)
            body.append(f"scope[{str(let.keys[0])!r}] = v")
        body.append("out = {}")
        containers = _containers(block.rules)
        body += [f"{local} = None" for local in containers.values()]
        for rule in block.rules:
            if rule.block is not None:
                body += self.foreach(rule, inner[id(rule)], containers)
            elif (const := _plain_constant(rule)) is not None:
                body += self.setter(rule, const, containers)  # a constant: set, no ``v`` between
            else:
                body += self.value(rule, fields)
                body += ["if v is not None:", *_indent(self.setter(rule, "v", containers), 1)]
        body.append("return out")
        self.lines += [f"def {name}(node, loc, scope0):", "    try:"]
        self.lines += _indent(body, 2)
        fallback = f"        return {runner}.block({slow}, node, loc, scope0)"
        self.lines += ["    except Exception:", fallback, ""]
        return name

    def foreach(self, rule: Rule, inner: str, containers: dict[KeyPath, str]) -> list[str]:
        """The code of a ``foreach`` rule: the nested block's function per item, then the list set."""
        assert rule.each is not None
        expr, many = rule.each
        lines = [
            "res = []",
            "i = 0",
            f"for item in {self.bind(many, 'many')}(node):",
            f"    res.append({inner}(item, (loc, {self.bind(expr, 'expr')}, i), scope))",
            "    i += 1",
        ]
        if rule.omit_empty:
            return [*lines, "if res:", *_indent(self.setter(rule, "res", containers), 1)]
        return lines + self.setter(rule, "res", containers)

    # ---- values ------------------------------------------------------------------------------------------
    def value(self, rule: Rule, fields: dict[str, str] | None) -> list[str]:
        """The code leaving the value of ``rule`` in ``v`` (None when missing), as ``Runner.value``."""
        lines: list[str] = []
        if rule.sources:
            for position, (_, get) in enumerate(rule.sources):
                got = self.source(get, fields)
                lines = got if position == 0 else [*lines, "if v is None:", *_indent(got, 1)]
        elif rule.const_var is not None:
            lines = [f"v = scope.get({rule.const_var!r})"]
        else:
            lines = [f"v = {self.literal(rule.const)}"]
        if rule.default is not None:
            lines += ["if v is None:", f"    v = {self.literal(rule.default)}"]
        lines += self.steps(rule.steps)
        if rule.required:
            lines += ["if v is None:", "    raise _Fallback"]
        if rule.when is not None:
            test = self.source(rule.when[1], fields)
            lines = [*test, "if v is None:", "    pass", "else:", *_indent(lines, 1)]
        return lines

    def literal(self, value: Any) -> str:
        """An expression giving ``value`` (a fresh copy of an object or a list, as the runner gives)."""
        if value is None or isinstance(value, bool | int) or type(value) is str:
            return repr(value)
        name = self.bind(value, "lit")
        return f"_deepcopy({name})" if isinstance(value, dict | list) else name

    def source(self, get: Callable[[Any], Any], fields: dict[str, str] | None) -> list[str]:
        """The code leaving what ``get`` gives at ``node`` in ``v``, written out for the common getters
        (``fields``: the locals holding the XML fields an indexed block read at its start)."""
        tag = getattr(get, "field_tag", None)
        if isinstance(tag, str):  # XML field: the attribute, else the first child element of that tag
            if fields is not None and tag in fields:
                return [f"v = {fields[tag]}"]
            return [
                f"v = node.get({tag!r})",
                "if not v:",
                f"    v = next(node.iterchildren({tag!r}), None)",
                "    v = None if v is None else _text(v)",
            ]
        key = getattr(get, "dict_key", None)
        if isinstance(key, str):  # JMESPath name: the key of an object, blank being missing
            return [
                f"v = node.get({key!r}) if _type(node) is _dict else {self.bind(get, 'get')}(node)",
                'if v == "":',
                "    v = None",
            ]
        path = getattr(get, "dict_path", None)
        if isinstance(path, tuple):  # JMESPath a.b.c over objects; anything else: the getter itself
            return self.dict_path(path, self.bind(get, "get"))
        return [f"v = {self.bind(get, 'get')}(node)"]

    @staticmethod
    def dict_path(path: tuple[str, ...], getter: str) -> list[str]:
        """The code of a dotted JMESPath name: ``w`` walks the objects with ``dict.get``; a value on the
        way that is not an object (null, a list, a string) hands the node to ``getter``, the compiled
        expression, which gives what JMESPath gives for it (null)."""
        first, *middle, last = path
        lines = [f"w = node.get({first!r}) if _type(node) is _dict else None"]
        for key in middle:
            lines.append(f"w = w.get({key!r}) if _type(w) is _dict else None")
        return [
            *lines,
            f"v = w.get({last!r}) if _type(w) is _dict else {getter}(node)",
            'if v == "":',
            "    v = None",
        ]

    def steps(self, steps: list[Step]) -> list[str]:
        """The pipeline's calls on ``v``; a missing value skips every step that is not ``none_ok``."""
        lines: list[str] = []
        for step in steps:
            call = self.call(step)
            lines += [f"v = {call}"] if step.none_ok else ["if v is not None:", f"    v = {call}"]
        return lines

    def call(self, step: Step) -> str:
        """One step called on ``v`` with its arguments: ``$variables`` read from ``scope`` (a KeyError
        when undefined: the block falls back to the runner, which says which variable is missing)."""
        if step.func is None or not (step.args or step.kwargs):
            return f"{self.bind(step.call, 'fn')}(v)"
        args = [self._arg(a) for a in step.args]
        kwargs = {k: self._arg(a) for k, a in step.kwargs}
        for where, var in step.var_args:
            if isinstance(where, int):
                args[where] = f"scope[{var!r}]"
            else:
                kwargs[where] = f"scope[{var!r}]"
        if not all(k.isidentifier() and not keyword.iskeyword(k) for k in kwargs):
            return f"_run_pipeline({self.bind([step], 'steps')}, v, scope)"
        parts = ["v", *args, *(f"{k}={a}" for k, a in kwargs.items())]
        return f"{self.bind(step.func, 'fn')}({', '.join(parts)})"  # the function, no partial between

    def _arg(self, value: Any) -> str:
        """A bound argument (passed as is: the pipeline does not copy arguments)."""
        return repr(value) if value is None or type(value) in (str, int, bool) else self.bind(value, "arg")

    # ---- targets -----------------------------------------------------------------------------------------
    def setter(self, rule: Rule, value: str, containers: dict[KeyPath, str] | None = None) -> list[str]:
        """The code setting ``value`` at the rule's target path in ``out``, as ``rules.make_setter``'s;
        with ``containers``, the object holding the last key is made once and kept in a local."""
        keys = rule.keys
        if len(keys) == 1 or isinstance(keys[0], int):
            if len(keys) == 1 and isinstance(keys[0], str):
                return [f"out[{keys[0]!r}] = {value}"]
            return [f"{self.bind(rule.setter, 'set')}(out, {value})"]
        lines = ["d = out"]
        for key, nxt in itertools.pairwise(keys):
            empty = "[]" if isinstance(nxt, int) else "{}"
            if isinstance(key, int):
                lines += [
                    f"while len(d) <= {key}:",
                    "    d.append(None)",
                    f"c = d[{key}]",
                    "if c is None:",
                    f"    c = d[{key}] = {empty}",
                ]
            else:
                lines += [f"c = d.get({key!r})", "if c is None:", f"    c = d[{key!r}] = {empty}"]
            lines.append("d = c")
        local = "d" if containers is None else containers.get(keys[:-1], "d")
        if local != "d":
            lines = [f"if {local} is None:", *_indent([*lines, f"{local} = d"], 1)]
        last = keys[-1]
        if isinstance(last, int):
            lines += [f"while len({local}) <= {last}:", f"    {local}.append(None)"]
        return [*lines, f"{local}[{last!r}] = {value}"]


#: A target path's keys (``("relatedParty", 0, "id")``).
KeyPath = tuple[str | int, ...]


def _read_tags(block: Block) -> list[str]:
    """The XML field tags a block's lets and rules read (sources and ``when`` tests), first read first."""
    tags: dict[str, None] = {}
    for rule in (*block.lets, *block.rules):
        getters = [get for _, get in rule.sources] + ([rule.when[1]] if rule.when is not None else [])
        for get in getters:
            tag = getattr(get, "field_tag", None)
            if isinstance(tag, str):
                tags[tag] = None
    return list(tags)


def _containers(rules: list[Rule]) -> dict[KeyPath, str]:
    """A local name per object that holds some rule's last key (``relatedParty[0]`` for
    ``relatedParty[0].id``), when the block can keep it: no rule sets a value at such an object's path
    or above it (that rule would replace the object kept). Empty when one does."""
    paths = [r.keys[:-1] for r in rules if len(r.keys) > 1 and isinstance(r.keys[0], str)]
    targets = [r.keys for r in rules]
    if any(path[: len(target)] == target for path in paths for target in targets):
        return {}
    names: dict[KeyPath, str] = {}
    for path in paths:
        names.setdefault(path, f"p{len(names)}")
    return names


def _plain_constant(rule: Rule) -> str | None:
    """The literal of a ``value:`` rule that is a string, a number or a boolean set as it is (no step,
    no ``when``), else None."""
    if rule.sources or rule.const_var is not None or rule.steps or rule.when is not None:
        return None
    const = rule.const
    if isinstance(const, bool | int) or type(const) is str:
        return repr(const)
    return None


def _field_tag(rule: Rule) -> str | None:
    """The tag of a rule whose one source is an XML ``field:`` (esb.transforms.xpathdialect), else None."""
    if len(rule.sources) != 1:
        return None
    tag: str | None = getattr(rule.sources[0][1], "field_tag", None)
    return tag


def _indent(lines: list[str], depth: int) -> list[str]:
    """``lines`` indented by ``depth`` levels of four spaces."""
    pad = "    " * depth
    return [pad + line for line in lines]
