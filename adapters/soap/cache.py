"""A disk cache of parsed WSDLs, so that a hub with many large contracts starts in seconds.

zeep's own ``SqliteCache`` stores the raw documents only; the cost of loading a WSDL is building its
schema types (measured: ~0.5 s for 950 complex types, several seconds for vendor billing WSDLs), which
that cache does not save. This cache pickles the loaded ``zeep.wsdl.Document`` itself, with reducers for
the few things pickle cannot carry (lxml QNames and elements, thread-locals, the classes zeep makes at
run time, the transport). An entry is used only when every contract file it was built from still has the
same SHA-256, and only with the same zeep and Python versions; otherwise it is rebuilt.

The cache lives under the hub's ``data_dir`` (written only by the hub): whoever can write there can run
code in the hub, exactly as whoever can write the project or the virtualenv can.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Any

from lxml import etree

from esb.files import make_folder, open_file, write_file

_DYNAMIC_MODULES = {"zeep.xsd.dynamic_types"}
_CACHED_PROPERTIES = ("_value_class", "_array_class")
FORMAT = 1


def _make_class(name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> type:
    return type(name, bases, attrs)


def _new_instance(cls: Any) -> Any:
    return cls.__new__(cls)


def _no_transport() -> None:
    return None


class _DocumentPickler(pickle.Pickler):
    """Pickles a zeep Document: reduces what the standard pickler refuses."""

    def reducer_override(self, obj: Any) -> Any:
        from zeep.transports import Transport

        if isinstance(obj, threading.local):
            return (type(obj), ())
        if isinstance(obj, etree.QName):
            return (etree.QName, (obj.text,))
        if isinstance(obj, etree._Element):
            return (etree.fromstring, (etree.tostring(obj),))
        if isinstance(obj, Transport):
            return (_no_transport, ())
        if isinstance(obj, type) and obj.__module__ in _DYNAMIC_MODULES:
            attrs = {k: v for k, v in vars(obj).items() if k not in ("__dict__", "__weakref__", "__doc__")}
            return (_make_class, (obj.__name__, obj.__bases__, attrs))
        if type(obj).__module__ in _DYNAMIC_MODULES and hasattr(obj, "__dict__"):
            state = {k: v for k, v in obj.__dict__.items() if k not in _CACHED_PROPERTIES}
            return (_new_instance, (type(obj),), state)
        return NotImplemented


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> str:
    return f"{FORMAT}/zeep-{version('zeep')}/py-{sys.version_info[0]}.{sys.version_info[1]}"


class DocumentCache:
    """Pickled WSDL documents in ``directory``, one file per WSDL path."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, wsdl: Path) -> Path:
        return self.directory / (hashlib.sha256(str(wsdl).encode()).hexdigest()[:32] + ".pickle")

    def get(self, wsdl: Path) -> tuple[Any, list[Path]] | None:
        """Return ``(document, files)`` when a fresh entry exists, else None (never raises)."""
        limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(limit, 20_000))
            data = _own_bytes(self._file(wsdl))
            if data is None:
                return None
            entry = pickle.loads(data)  # noqa: S301 - written by this hub only; see the module docstring
            if entry["versions"] != _versions() or entry["wsdl"] != str(wsdl):
                return None
            files = [Path(p) for p in entry["files"]]
            if any(_digest(p) != entry["files"][str(p)] for p in files):
                return None
            document = pickle.loads(entry["document"])  # noqa: S301 - as above
        except Exception:
            return None
        finally:
            sys.setrecursionlimit(limit)
        return document, files

    def put(self, wsdl: Path, document: Any, files: list[Path]) -> bool:
        """Store ``document`` built from ``files``; False when it cannot be pickled or written."""
        buffer = io.BytesIO()
        limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(limit, 20_000))
            _DocumentPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(document)
            entry = {
                "versions": _versions(),
                "wsdl": str(wsdl),
                "files": {str(p): _digest(p) for p in files},
                "document": buffer.getvalue(),
            }
            make_folder(self.directory)  # 0700: a pickle another account could write would run its code
            write_file(self._file(wsdl), pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:
            return False
        finally:
            sys.setrecursionlimit(limit)
        return True


def _own_bytes(path: Path) -> bytes | None:
    """The bytes of ``path`` when it is a regular file (not a link) of this account that no other account
    may write; None otherwise (a pickle is code: one written by someone else is never loaded)."""
    with open_file(path, "read") as handle:
        st = os.fstat(handle.fileno())
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return None
        return handle.read()
