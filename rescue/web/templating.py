"""Jinja2 templates for pages and printed documents (Litestar ``TemplateConfig``).

Templates live in ``rescue/templates/``, one folder per domain (``cases/``,
``matching/``, ``users/`` ...) beside ``base.html``. In a template:

- ``{{ _("case {ref} was registered", ref=case.reference) }}``: a catalogue text
  (rescue.i18n, the same ``_`` as the Python code: English msgid, ``str.format``
  parameters; ``make messages`` extracts it from templates too);
- ``{{ label(case.status) }}``: an enum value's name (``CaseStatus.admitted`` → 入站);
- ``{{ moment|localtime }}`` / ``{{ moment|localdate }}``: a timestamp in China
  Standard Time (the station's timezone, rescue.clock);
- ``{{ csrf_input }}`` in every form (Litestar's CSRF token field), and
  ``{{ form_key() }}`` in forms that create something (rescue.web.forms:
  a double submit does not create two records).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from rescue import clock
from rescue.cases.events import event_label, event_summary
from rescue.i18n import _, active_locale, label, ngettext
from rescue.permissions import permitted

__all__ = ["TEMPLATE_DIR", "environment", "template_config"]

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"


def _localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return clock.local(value).strftime(fmt)


def _localdate(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return clock.local_date(value).isoformat()
    return value.isoformat()


def _label(value: Any, enum: type[Enum] | None = None) -> str:
    """``label`` that also takes a plain value with its enum type."""
    if isinstance(value, Enum):
        return label(value)
    if enum is not None and value is not None:
        try:
            return label(enum(value))
        except ValueError:
            return str(value)
    return "" if value is None else str(value)


def _station(code: str) -> Any:
    """``{{ station(case.station).name }}``: how a station is named to people
    (``STATION_NAMES``; its code when not configured)."""
    from rescue.settings import get_settings

    return get_settings().site.station(code or "")


class _Enums:
    """``enums.PhotoStatus`` etc. in templates (for ``label(value, enums.X)``)."""

    def __getattr__(self, name: str) -> type[Enum]:
        from rescue.i18n.enums import visible_enums

        for enum in visible_enums():
            if enum.__name__ == name:
                return enum
        raise AttributeError(name)


def _configure(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.add_extension("jinja2.ext.i18n")
    # The catalogue's own functions (str.format parameters), not gettext's %-style.
    env.globals.update(
        _=_,
        gettext=_,
        ngettext=ngettext,
        label=_label,
        active_locale=active_locale,
        event_label=event_label,
        event_summary=event_summary,
        permitted=permitted,
    )
    env.globals["enums"] = _Enums()
    env.globals["station"] = _station
    env.filters["localtime"] = _localtime
    env.filters["localdate"] = _localdate
    env.policies["ext.i18n.trimmed"] = True


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The app's template configuration (autoescaping on for .html)."""
    return TemplateConfig(
        directory=TEMPLATE_DIR,
        engine=JinjaTemplateEngine,
        engine_callback=_configure,
    )


def environment() -> Any:
    """A standalone Jinja environment on the same templates (PDF documents)."""
    engine = JinjaTemplateEngine(directory=TEMPLATE_DIR)
    _configure(engine)
    return engine.engine
