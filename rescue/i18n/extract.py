"""Collect every msgid and merge it into the catalogues (``make messages``).

Sources: ``_()``/``N_()`` calls in the Python packages, ``{% trans %}``/``_()``
in the Jinja2 templates (Jinja2's Babel extractor), and the labels of
:func:`rescue.i18n.enums.visible_enums`. New msgids are added to every
catalogue untranslated; msgids no longer used are dropped. Translate the new
entries in ``locale/zh_CN/.../messages.po`` (and ``en`` for enum labels), then
run ``make test``: ``tests/unit/test_catalogue.py`` names any left untranslated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from rescue.i18n import LOCALE_DIR
from rescue.settings import LOCALES

__all__ = ["ROOT", "main", "template"]

ROOT = Path(__file__).resolve().parents[2]
#: Folders scanned, relative to the checkout, and Babel's method map for them.
SOURCES = ("rescue", "media", "workers")
METHODS = [
    ("**/piccolo_migrations/**", "ignore"),
    ("**.py", "python"),
    ("**/templates/**.html", "jinja2"),
    ("**/templates/**.txt", "jinja2"),
]
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
OPTIONS = {"**/templates/**": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}


_FIXED_DATE = datetime(2026, 12, 1, tzinfo=UTC)


def template() -> Catalog:
    """Every msgid the code and templates use, with where it is used."""
    from rescue.i18n.enums import visible_enums

    # A fixed creation date: the header must not change on every run (merge conflicts).
    catalog = Catalog(project="rescue", charset="utf-8", creation_date=_FIXED_DATE)
    for folder in SOURCES:
        found = extract_from_dir(
            ROOT / folder, METHODS, keywords=KEYWORDS, options_map=OPTIONS, comment_tags=("NOTE",)
        )
        for filename, lineno, message, comments, _context in found:
            catalog.add(
                message,
                None,
                [(f"{folder}/{filename}", lineno)],
                auto_comments=comments,
            )
    for enum in visible_enums():
        for member in enum:
            catalog.add(f"{enum.__name__}.{member.value}", None, auto_comments=["enum label"])
    return catalog


def main() -> None:
    """Update each locale's messages.po from :func:`template`."""
    source = template()
    for locale in LOCALES:
        path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        catalog.update(source, no_fuzzy_matching=True)
        catalog.revision_date = _FIXED_DATE
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, ignore_obsolete=True)
        missing = sum(
            1
            for m in catalog
            if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)
        )
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages, {missing} untranslated")


if __name__ == "__main__":
    main()
