"""A tiny HTML renderer that escapes every value it is given.

``Markup`` is text already known to be HTML; anything else put into a template (state names,
inputs, outputs, causes: user text) is escaped with :func:`html.escape` (quotes too, so values
are safe inside attributes). :func:`render` fills a ``str.format`` template whose fields are
plain names; :func:`join` concatenates fragments, escaping the ones that are not ``Markup``.

Imports only the standard library.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any, final

__all__ = ["Markup", "escape", "join", "pretty", "render"]


@final
class Markup(str):
    """Text that is HTML already: it is inserted into templates as it is."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """``value`` as HTML: ``Markup`` unchanged, ``None`` as nothing, anything else escaped."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(html.escape(str(value), quote=True))


class _Escaping(Mapping[str, Markup]):
    """The values of a template, each escaped when the template reads it."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Markup:
        return escape(self._values[key])

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def render(template: str, /, **values: object) -> Markup:
    """``template`` with each ``{name}`` replaced by the escaped ``values[name]``.

    Templates are constants of the console; a literal brace is written ``{{`` or ``}}``.
    """
    return Markup(template.format_map(_Escaping(values)))


def join(parts: Iterable[object], separator: str = "") -> Markup:
    """The fragments one after the other, each escaped unless it is ``Markup``."""
    return Markup(separator.join(escape(part) for part in parts))


def pretty(value: Any) -> Markup:
    """A JSON value indented in a ``<pre>`` (escaped)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    return render('<pre class="json">{text}</pre>', text=text)
