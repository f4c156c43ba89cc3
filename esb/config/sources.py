"""The settings' sources read into one mapping, for :class:`esb.config.settings.Settings` to validate.

Lowest priority first, each deep-merged over the ones before (a nested key replaces only itself)::

    config/settings.yaml, config/settings.<env>.yaml     ``${VAR}`` filled from the environment
    environment variables                                 ESB_JOURNAL__URL=..., nested with "__"
    secret files                                          $ESB_SECRETS_DIR/journal__url

This is what pydantic-settings' ``EnvSettingsSource`` and ``NestedSecretsSettingsSource`` did for the
model (``env_prefix="ESB_"``, ``env_nested_delimiter="__"``, case-insensitive), rule for rule: a variable
naming a section or a field whose type is a model, a dict or a list holds JSON; one naming a scalar field
holds the text, which the model then validates; names are matched without regard to case. Reading them
here costs no import beyond the models themselves (pydantic-settings' own imports, asyncio among them,
were ~30 ms of every cold command: bench/README.md "Cold operators' commands");
tests/unit/test_settings_sources.py checks that every case gives what pydantic-settings gives.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from esb.config.yamlpos import load_yaml
from esb.exceptions import ConfigError

PREFIX = "esb_"
DELIMITER = "__"
#: Bounds of the secrets folder (pydantic-settings' own).
SECRETS_MAX_BYTES = 16 * 2**20
SECRETS_MAX_ENTRIES = 10_000

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_COMPLEX_ORIGINS = (BaseModel, Mapping, Sequence, AbstractSet, tuple, deque)


def interpolate(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``value`` from ``environ``."""
    if isinstance(value, dict):
        return {k: interpolate(v, where, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, where, environ) for v in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match["name"], match["default"]
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: ${{{name}}} is not set in the environment (set it or give a default)")

    return _ENV_REF.sub(repl, value)


def read_sources(
    model: type[BaseModel], files: list[tuple[Path, str]], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The settings every source gives, merged in the order of the module docstring (not validated)."""
    data: dict[str, Any] = {}
    for path, display in files:
        data = deep_update(data, yaml_file(path, display, environ))
    variables = {name.lower(): value for name, value in environ.items()}
    data = deep_update(data, from_variables(model, variables, PREFIX))
    secrets = environ.get("ESB_SECRETS_DIR")
    if secrets:
        data = deep_update(data, from_variables(model, secret_files(Path(secrets)), ""))
    return data


def yaml_file(path: Path, display: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """One settings YAML file's mapping, ``${VAR}`` filled (empty when the file does not exist)."""
    if not path.exists():
        return {}
    doc = load_yaml(path, display=display)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise ConfigError(f"{display}:1: settings must be a mapping")
    return dict(interpolate(doc.data or {}, display, environ))


def deep_update(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``update`` merged in: mappings key by key, anything else replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_update(merged[key], value)
        else:
            merged[key] = value
    return merged


def secret_files(folder: Path) -> dict[str, str]:
    """``{file name (lower case): its text, stripped}`` for the files of the secrets folder.

    Hidden entries and files whose real place is outside the folder are skipped; sub-folders are walked
    (their files' names hold a ``/`` and so name no setting); a missing folder is a warning.
    """
    folder = folder.expanduser().resolve()
    if not folder.exists():
        warnings.warn(f'directory "{folder}" does not exist', stacklevel=3)
        return {}
    if not folder.is_dir():
        raise ConfigError(f"ESB_SECRETS_DIR: {folder} is not a directory")
    found = list(_walk_secrets(folder, folder, frozenset({folder}), [0]))
    if sum(path.stat().st_size for path in found) > SECRETS_MAX_BYTES:
        raise ConfigError(f"ESB_SECRETS_DIR: {folder} holds more than {SECRETS_MAX_BYTES} bytes")
    return {str(p.relative_to(folder)).lower(): p.read_text(encoding="utf-8").strip() for p in found}


def _walk_secrets(root: Path, folder: Path, ancestors: frozenset[Path], seen: list[int]) -> Iterator[Path]:
    """The secret files under ``folder``, each inside ``root`` once resolved; links back up not followed."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        seen[0] += 1
        if seen[0] > SECRETS_MAX_ENTRIES:
            raise ConfigError(f"ESB_SECRETS_DIR: {root} has more than {SECRETS_MAX_ENTRIES} entries")
        try:
            real = entry.resolve()
        except (OSError, RuntimeError):
            continue
        if real.is_dir():
            if (real == root or root in real.parents) and real not in ancestors:
                yield from _walk_secrets(root, entry, ancestors | {real}, seen)
        elif real.is_file() and root in real.parents:
            yield entry


def from_variables(model: type[BaseModel], variables: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The settings named by ``variables`` (names in lower case): ``<prefix><field>`` holds a field's
    value (JSON when the field is complex), ``<prefix><field>__<key>...`` one nested key of it."""
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        head = f"{prefix}{name}"
        text = variables.get(head)
        complex_, lenient = _field_is_complex(field)
        value: Any = None
        if complex_:
            nested = _explode(head + DELIMITER, field, variables)
            if text is None:
                value = nested or None
            else:
                value = _decode(text, lenient, head)
                if isinstance(value, dict):
                    value = deep_update(value, nested)
        elif text is not None:
            value = text
        if value is not None:
            data[name] = _fold_names(field.annotation, value) if isinstance(value, dict) else value
    return data


def _explode(prefix: str, field: FieldInfo, variables: Mapping[str, str]) -> dict[str, Any]:
    """The nested keys of ``field`` that variables named ``<prefix>key__key...`` set."""
    is_dict = field.annotation is dict or _is_subclass(get_origin(field.annotation), dict)
    result: dict[str, Any] = {}
    for name, text in variables.items():
        if not name.startswith(prefix):
            continue
        *keys, last = name[len(prefix) :].split(DELIMITER)
        into: Any = result
        target: Any = field
        for key in keys:
            target = _next_field(target, key)
            if isinstance(into, dict):
                into = into.setdefault(key, {})
        target = _next_field(target, last)
        value: Any = text
        if (target is not None or is_dict) and text:
            if isinstance(target, FieldInfo):
                complex_, lenient = _field_is_complex(target)
            elif target is not None:
                complex_, lenient = _is_complex(target), True
                if not complex_ and _union_is_complex(target):
                    value = _decode_union(text)
            else:
                complex_, lenient = True, True
            if complex_:
                value = _decode(text, lenient, name)
        if isinstance(into, dict):
            into[last] = value
    return result


def _decode(text: str, lenient: bool, name: str) -> Any:
    """A complex value's JSON; the text itself when it is not JSON and ``lenient``."""
    try:
        return json.loads(text)
    except ValueError:
        if lenient:
            return text
        raise ConfigError(f"settings: {name.upper()}: not valid JSON (a section, dict or list)") from None


def _decode_union(text: str) -> Any:
    """A value for a union with a complex member: its JSON when that is a list or dict, else the text."""
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    return decoded if isinstance(decoded, list | dict) else text


def _next_field(target: Any, key: str) -> Any:
    """The field (or, inside a dict, the value type) that ``key`` names under ``target``; None if none."""
    if target is None:
        return None
    annotation = target.annotation if isinstance(target, FieldInfo) else target
    if _is_subclass(get_origin(annotation), dict):
        args = get_args(annotation)
        return args[-1] if args else None
    for member in get_args(annotation):
        found = _next_field(member, key)
        if found is not None:
            return found
    if _is_model(annotation):
        for name, field in annotation.model_fields.items():
            if name.lower() == key.lower():
                return field
    return None


def _fold_names(annotation: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with each key that names a field of the model ``annotation`` (in any case) spelt as the
    field is, recursively through nested models."""
    model = _strip_annotated(_unwrap_optional(annotation))
    if not _is_model(model):
        return values
    fields = model.model_fields
    folded: dict[str, Any] = {}
    for name, value in values.items():
        field_name = next((f for f in fields if f.lower() == name.lower()), None)
        if field_name is None:
            folded[name] = value
        elif isinstance(value, dict):
            folded[field_name] = _fold_names(fields[field_name].annotation, value)
        else:
            folded[field_name] = value
    return folded


def _field_is_complex(field: FieldInfo) -> tuple[bool, bool]:
    """Whether a field's value is JSON, and whether text that is not JSON is kept as it is (a union)."""
    if _is_complex(field.annotation):
        return True, False
    annotation = _strip_annotated(field.annotation)
    if _is_union(annotation) and _union_is_complex(annotation):
        return True, True
    return False, False


def _is_complex(annotation: Any) -> bool:
    """A model, a mapping, a sequence other than text, a set (through ``Annotated``), whose value is JSON."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_complex(get_args(annotation)[0])
    return any(
        _is_subclass(a, _COMPLEX_ORIGINS) and not _is_subclass(a, (str, bytes)) for a in (annotation, origin)
    )


def _union_is_complex(annotation: Any) -> bool:
    """A union with a complex member (``list[str] | None``)."""
    return _is_union(annotation) and any(_is_complex(a) for a in get_args(annotation))


def _is_union(annotation: Any) -> bool:
    """``X | Y`` or ``Union[X, Y]``."""
    return get_origin(annotation) in (Union, UnionType)


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` of ``X | None``; anything else as it is."""
    args = get_args(annotation)
    if _is_union(annotation) and len(args) == 2 and NoneType in args:
        return next(a for a in args if a is not NoneType)
    return annotation


def _strip_annotated(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]``."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    """A pydantic model class."""
    return _is_subclass(annotation, BaseModel)


def _is_subclass(value: Any, classes: type | tuple[type, ...]) -> bool:
    """``issubclass`` that answers False for what is not a class."""
    return isinstance(value, type) and issubclass(value, classes)
