"""The one message catalogue: every user-visible text, zh-CN first, English second.

Texts are gettext messages whose ids are English sentences (``msgid``); the
catalogues are ``rescue/i18n/locale/<locale>/LC_MESSAGES/messages.po`` (Babel
reads them at start-up, no compile step). Use:

- ``_("case {case_id} does not exist", case_id=7)``: the text in the active
  locale, formatted with ``str.format`` when parameters are given.
- ``ngettext("{n} announcement", "{n} announcements", n)``: the form of the
  active locale's plural rule (the catalogue's ``Plural-Forms``) for ``n``,
  formatted with ``n`` and any further parameters; English's two forms are the
  msgids themselves, zh_CN has one.
- ``N_("...")``: marks a module-level constant for extraction; translate it
  with ``_()`` where it is shown.
- :func:`label`: the name of an enum member (msgid ``"<Enum>.<value>"``, e.g.
  ``"CaseStatus.admitted"`` → 入站); enum labels live in the catalogue, not in
  the enums.

The active locale is a context variable: a request sets it from the user's
setting or ``Accept-Language`` (:func:`negotiate`), everything else (workers,
CLI) uses ``DEFAULT_LOCALE`` (zh_CN). ``make messages`` extracts new msgids
into both catalogues (pybabel); ``tests/unit/test_catalogue.py`` fails when a
message or an enum value has no zh_CN text.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "LOCALE_DIR",
    "N_",
    "_",
    "active_locale",
    "catalogue",
    "label",
    "negotiate",
    "ngettext",
    "plurals",
    "use_locale",
]

LOCALE_DIR = Path(__file__).with_name("locale")

_active: ContextVar[str | None] = ContextVar("rescue_locale", default=None)


@lru_cache(maxsize=8)
def _read(locale: str) -> Any:
    """The Babel catalog of ``locale``, or None when it has none."""
    from babel.messages.pofile import read_po

    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return None
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


@lru_cache(maxsize=8)
def catalogue(locale: str) -> dict[str, str]:
    """msgid → text of ``locale`` (untranslated entries left out)."""
    catalog = _read(locale)
    if catalog is None:
        return {}
    return {
        str(m.id): str(m.string)
        for m in catalog
        if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
    }


@lru_cache(maxsize=8)
def plurals(
    locale: str,
) -> tuple[dict[tuple[str, str], tuple[str, ...]], Callable[[int], int]]:
    """(singular, plural) msgid → the forms of ``locale`` (entries with any form
    untranslated left out), and the rule choosing a form's index for a count."""
    catalog = _read(locale)
    if catalog is None:
        return {}, _english
    forms = {
        (str(m.id[0]), str(m.id[1])): tuple(str(s) for s in m.string)
        for m in catalog
        if isinstance(m.id, tuple) and isinstance(m.string, tuple) and all(m.string) and not m.fuzzy
    }
    return forms, gettext.c2py(catalog.plural_expr)


def _default_locale() -> str:
    from rescue.settings import get_settings

    return get_settings().default_locale


def active_locale() -> str:
    """The locale of the current request, or ``DEFAULT_LOCALE``."""
    return _active.get() or _default_locale()


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Make ``locale`` active for the block (requests, documents, tests)."""
    token = _active.set(locale)
    try:
        yield
    finally:
        _active.reset(token)


def _(msgid: str, /, **params: Any) -> str:
    """``msgid`` in the active locale, formatted with ``params`` (``str.format``).

    A msgid missing from the catalogue is shown as written (English)."""
    text = catalogue(active_locale()).get(msgid, msgid)
    return text.format(**params) if params else text


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> str:
    """The form of ``singular``/``plural`` for the count ``n`` in the active
    locale, formatted with ``n`` and ``params`` (``str.format``).

    Untranslated: English's rule, the msgids as written."""
    forms, rule = plurals(active_locale())
    texts = forms.get((singular, plural)) or (singular, plural)
    rule = rule if (singular, plural) in forms else _english
    return texts[min(rule(n), len(texts) - 1)].format(n=n, **params)


def _english(n: int) -> int:
    return int(n != 1)


def N_(msgid: str, /) -> str:
    """Mark ``msgid`` for extraction without translating it now."""
    return msgid


def label(member: Enum) -> str:
    """The name of an enum member in the active locale (msgid ``Enum.value``)."""
    msgid = f"{type(member).__name__}.{member.value}"
    text = catalogue(active_locale()).get(msgid)
    if text is None:
        text = catalogue("en").get(msgid, str(member.value))
    return text


def negotiate(accept_language: str | None, preferred: str | None = None) -> str:
    """The locale for a request: the user's ``preferred`` setting if supported,
    else the best of ``Accept-Language`` (RFC 9110 §12.5.4), else ``DEFAULT_LOCALE``."""
    from babel import Locale, UnknownLocaleError

    from rescue.settings import LOCALES

    if preferred in LOCALES:
        return str(preferred)
    wanted: list[tuple[float, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        if not tag or tag == "*":
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        wanted.append((quality - index * 1e-6, tag.replace("-", "_")))
    for _q, tag in sorted(wanted, reverse=True):
        try:
            parsed = Locale.parse(tag)
        except (ValueError, UnknownLocaleError):
            continue
        if parsed.language == "zh":
            return "zh_CN"
        if parsed.language == "en":
            return "en"
    return _default_locale()
