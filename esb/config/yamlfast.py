"""A fast path for :func:`esb.config.yamlpos.load_yaml_text`: libyaml's C parser, YAML 1.2 scalars.

ruamel.yaml's round-trip loader (pure Python) takes 70-90 ms for routes.yaml or systems.yaml; libyaml
(PyYAML's C extension) builds the same node tree, with each node's line, in 2-3 ms. This module turns
that tree into the same :class:`Located` document (plain data plus the line of every key and item) as
the ruamel path, for the documents whose meaning both agree on, and answers None for everything else:
then ruamel loads the text and reports any error with its position, as before.

What is taken here: mappings with plain scalar keys and no duplicate key, sequences, quoted and block
strings, and plain scalars that are strings, ``true``/``false`` (YAML 1.2 spellings), nulls, decimal
integers and simple decimal fractions. What is left to ruamel (None): a missing libyaml, any parser
error, explicit tags, anchors and aliases, merge keys, ``%`` directives, duplicate or complex keys,
and every other plain scalar that one of YAML 1.2's implicit resolvers (:data:`RESOLVERS`, kept equal to
ruamel's own by a unit test) would make something other than a string (hex, octal, ``1_000``,
``.inf``, timestamps...). tests/unit/test_yamlfast.py compares both paths on every YAML file of the
repository.
"""

from __future__ import annotations

import re
from typing import Any

from esb.config.yamlpos import Located, PathKey

#: YAML 1.2's implicit resolvers as ruamel.yaml applies them: tag -> pattern (``re.X``).
RESOLVERS: dict[str, str] = {
    "tag:yaml.org,2002:bool": """^(?:true|True|TRUE|false|False|FALSE)$""",
    "tag:yaml.org,2002:float": """^(?:
         [-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\\.(?:inf|Inf|INF)
        |\\.(?:nan|NaN|NAN))$""",
    "tag:yaml.org,2002:int": """^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""",
    "tag:yaml.org,2002:merge": "^(?:<<)$",
    "tag:yaml.org,2002:null": """^(?: ~
        |null|Null|NULL
        | )$""",
    "tag:yaml.org,2002:timestamp": """^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \\t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\\.[0-9]*)?
        (?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
    "tag:yaml.org,2002:value": "^(?:=)$",
}
_TYPED = re.compile("|".join(f"(?:{p})" for p in RESOLVERS.values()), re.X)
_KNOWN: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
}
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+\Z")
_PLAIN = "esb:plain"  # the tag our resolver gives every plain scalar, so that explicit tags stand out
_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"


class Unsupported(Exception):  # noqa: N818  # a signal to fall back, not an error
    """The document uses something this path leaves to ruamel (not an error in the document)."""


def _parser() -> Any:
    """libyaml's parser class with our resolver, or None when PyYAML has no libyaml."""
    try:
        import yaml
        from yaml._yaml import CParser
    except ImportError:
        return None
    nodes = yaml.nodes

    class Parser(CParser):  # type: ignore[misc]  # PyYAML ships no type hints
        """CParser whose resolver marks plain scalars and leaves the rest to their explicit tag."""

        def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
            if kind is nodes.ScalarNode:
                return _PLAIN if implicit[0] else _STR
            return _SEQ if kind is nodes.SequenceNode else _MAP

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            """No path resolvers."""

        def ascend_resolver(self) -> None:
            """No path resolvers."""

    return Parser


_PARSER: Any = None


def _plain_scalar(text: str) -> Any:
    """The value of a plain scalar under YAML 1.2's core schema, or Unsupported."""
    if text in _KNOWN:
        return _KNOWN[text]
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if _TYPED.match(text):
        raise Unsupported(text)
    return text


def _scalar(node: Any) -> Any:
    if node.tag == _PLAIN:
        return _plain_scalar(node.value)
    if node.tag == _STR and node.style is not None:  # quoted or block: a string (an explicit !!str too)
        return node.value
    raise Unsupported(node.tag)


def _build(node: Any, path: PathKey, lines: dict[PathKey, int], seen: set[int]) -> Any:
    if id(node) in seen:
        raise Unsupported("alias")
    seen.add(id(node))
    kind = node.id
    if kind == "scalar":
        return _scalar(node)
    if kind == "sequence" and node.tag == _SEQ:
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            items.append(_build(item, child, lines, seen))
        return items
    if kind == "mapping" and node.tag == _MAP:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.id != "scalar":
                raise Unsupported("complex key")
            key = str(_scalar(key_node))
            if key in out:
                raise Unsupported("duplicate key")  # ruamel names it, with its line
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _build(value_node, child, lines, seen)
        return out
    raise Unsupported(node.tag)


def load_fast(text: str, file: str) -> Located | None:
    """Return ``text`` as a :class:`Located` document, or None when ruamel must load it (see module)."""
    global _PARSER  # the parser class is made once, on first use
    if "%" in text and re.search(r"^%", text, re.M):
        return None  # a directive (%YAML 1.1 changes what scalars mean)
    if _PARSER is None:
        _PARSER = _parser() or False
    if _PARSER is False:
        return None
    try:
        parser = _PARSER(text)
        try:
            root = parser.get_single_node()
        finally:
            parser.dispose()
        lines: dict[PathKey, int] = {(): 1}
        data = None if root is None else _build(root, (), lines, set())
    except Exception:  # any refusal (a YAML error included) goes to ruamel, which reports it
        return None
    return Located(data, file, lines)
