"""Heavy modules loaded on first use, so a notebook pays only for what it uses.

SciPy and textstat each take about a second to import. Most notebooks of a workbook run
never call them (the runner has already worked the steps out), so they are loaded only
when a value is first asked of them.

Example
-------
>>> from equity_helpers.lazy import lazy_module
>>> json = lazy_module("json")
>>> json.dumps([1])
'[1]'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


class _Lazy:
    """Stands in for a value made by ``make`` the first time one of its attributes is read."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], Any]):
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_value", None)

    def _get(self):
        value = object.__getattribute__(self, "_value")
        if value is None:
            value = object.__getattribute__(self, "_make")()
            object.__setattr__(self, "_value", value)
        return value

    def __getattr__(self, name: str):
        return getattr(self._get(), name)


def lazy_module(name: str) -> Any:
    """A module imported the first time one of its attributes is read."""
    return _Lazy(lambda: importlib.import_module(name))


def lazy_value(make: Callable[[], Any]) -> Any:
    """A value made by ``make()`` the first time one of its attributes is read."""
    return _Lazy(make)


#: A package jsonschema loads, when it is installed, to check "iri" formats.
_IRI_CHECKER = "rfc3987_syntax"


def skip_iri_checker() -> None:
    """Keep jsonschema from loading its checker of web addresses in this process.

    Reading or writing a notebook loads nbformat, which loads jsonschema, which loads
    ``rfc3987_syntax`` when it is installed (another package needs it): that builds a
    parser of web addresses as it is imported, about a second of CPU in every process that
    touches a notebook. The notebook schemas check no "iri" format, so a run never needs it.
    Call before nbformat is first imported; a checker already loaded stays as it is.
    """
    sys.modules.setdefault(_IRI_CHECKER, None)  # None: importing it fails, and is skipped
