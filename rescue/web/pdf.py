"""Printed documents: PDFs from the same HTML templates as the pages (WeasyPrint).

WeasyPrint lays out with Debian's Pango and embeds the fonts it uses (subset),
so a PDF prints the same on any PC. Chinese text needs a CJK font installed on
the server: Debian's ``fonts-noto-cjk`` (installed by ``make install`` and
``.ci/run``). Without it, :func:`render_pdf` refuses with :class:`FontMissing`
naming that package instead of printing empty boxes.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from typing import Any

import anyio.to_thread

from rescue.errors import DomainError
from rescue.i18n import _
from rescue.web.templating import environment

__all__ = ["FontMissing", "cjk_font_families", "render_pdf"]

#: The Debian package giving the CJK font (named in the error when missing).
CJK_FONT_PACKAGE = "fonts-noto-cjk"


class FontMissing(DomainError):
    """No CJK font on the server: printed Chinese would be empty boxes (503)."""

    status_code = 503
    error = "font_missing"


@functools.cache
def cjk_font_families() -> tuple[str, ...]:
    """Font families fontconfig knows for Chinese (``fc-list :lang=zh family``)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return ()
    out = subprocess.run(
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    return tuple(sorted({line.split(",")[0].strip() for line in out.splitlines() if line.strip()}))


def _render(template_name: str, context: dict[str, Any]) -> bytes:
    from weasyprint import HTML

    html = environment().get_template(template_name).render(**context)
    return bytes(HTML(string=html).write_pdf())


async def render_pdf(template_name: str, **context: Any) -> bytes:
    """The template rendered as a PDF (A4 pages as its ``@page`` rule says).

    Raises:
        FontMissing: no CJK font installed (names the Debian package).
    """
    if not cjk_font_families():
        raise FontMissing(
            _(
                "No Chinese font is installed on the server: install the Debian package "
                "{package} (make install does)",
                package=CJK_FONT_PACKAGE,
            ),
            accepted=CJK_FONT_PACKAGE,
        )
    return await anyio.to_thread.run_sync(lambda: _render(template_name, context))
