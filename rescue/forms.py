"""Reading ``multipart/form-data`` bodies, with a 400 that says what was wrong.

Litestar's own reader answers 500 to parts it cannot decode (a text part in a
non-UTF-8 encoding, an unknown charset, a file part whose filename is given only
as RFC 2231 ``filename*``, so the file is taken for text) and a bare "Invalid
multipart/form-data" to framing errors (issue 11 item 6). :func:`form_middleware`
reads the form first with :func:`parse_form`, which refuses each of these with
:class:`~rescue.errors.InvalidInput` naming the part and what is accepted, and
hands Litestar the parsed form (its extractor then uses it as it is).

Accepted (RFC 7578): every part has a ``name``; a text part is UTF-8, or
declares a ``charset`` Python knows and is valid in it; a file part has a plain,
non-empty ``filename="…"`` in UTF-8 (``filename*`` alone is not accepted).
"""

from __future__ import annotations

import codecs
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from litestar.datastructures.upload_file import UploadFile
from litestar.enums import RequestEncodingType
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Empty, Receive, Scope, Send
from multipart import (  # type: ignore[import-untyped]
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
)

from rescue.errors import InvalidInput, PayloadTooLarge
from rescue.i18n import _

__all__ = [
    "BODY_LIMIT",
    "REFUSAL_ON_PAGE",
    "form_head",
    "form_middleware",
    "import_body_limit",
    "parse_form",
    "refused_body",
]


def _is_text(segment: MultipartSegment) -> bool:
    content_type = (segment.content_type or "text/plain").lower()
    return content_type.startswith("text/") or content_type == "application/json"


def _check_file(segment: MultipartSegment) -> None:
    disposition = segment.header("Content-Disposition", "") or ""
    name = segment.name
    if segment.filename is None and ("filename*" in disposition or not _is_text(segment)):
        raise InvalidInput(
            _(
                "part {name!r} is a file (Content-Type {content_type}) without a plain filename",
                name=name,
                content_type=segment.content_type or "",
            ),
            accepted=_('a file part with filename="…" in UTF-8 (filename* alone is not accepted)'),
        )


def _text(segment: MultipartSegment, data: bytes) -> str:
    charset = segment.charset or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        raise InvalidInput(
            _(
                "part {name!r} declares charset {charset!r}, which is not known",
                name=segment.name,
                charset=charset,
            ),
            accepted=_("text parts in UTF-8"),
        ) from None
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        raise InvalidInput(
            _(
                "part {name!r} is not valid {charset} text (without a charset, text "
                "parts are read as UTF-8)",
                name=segment.name,
                charset=charset.upper(),
            ),
            accepted=_("text parts in UTF-8"),
        ) from None


async def _close(fields: dict[str, list[Any]], data: Any) -> None:
    if isinstance(data, UploadFile):
        await data.close()
    for values in fields.values():
        for value in values:
            if isinstance(value, UploadFile):
                await value.close()


async def _with_end(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The body's chunks, then ``b""``: the parser's end of input (it raises if the
    body stopped before its closing boundary)."""
    async for chunk in stream:
        if chunk:
            yield chunk
    yield b""


#: Route option (``opt={BODY_LIMIT: "import"}``) of a route whose body may be as
#: large as an import upload (``IMPORT_MAX_BYTES`` per file: a list and its
#: photos ZIP): :func:`parse_form` counts the bytes as they arrive and refuses
#: more than :func:`import_body_limit`, naming it; Litestar's own limit of the
#: route is set a little above it (rescue.app), 2 × ``UPLOAD_MAX_BYTES`` on
#: every other route.
BODY_LIMIT = "body_limit"
#: Route option (``opt={REFUSAL_ON_PAGE: True}``) of a page taking an import
#: upload: a body announced (``Content-Length``) over :func:`import_body_limit`
#: is not read; the middleware reads only the text fields before its first file
#: (the CSRF token, what was typed) and lets the handler answer, which finds the
#: refusal with :func:`refused_body` and shows it next to the file field. Any
#: other route refuses such a body at once (413 naming the limit).
REFUSAL_ON_PAGE = "refusal_on_page"
#: Bytes of a form beyond its files: the other fields and the parts' headers.
FORM_OVERHEAD = 1 << 20
#: Key in the request's state (``scope["state"]``) of a refused import body.
_REFUSED = "rescue.refused_body"


def refused_body(request: Any) -> PayloadTooLarge | None:
    """The refusal of this request's body (:data:`REFUSAL_ON_PAGE`), or None."""
    refused = request.scope.get("state", {}).get(_REFUSED)
    return refused if isinstance(refused, PayloadTooLarge) else None


def import_body_limit() -> int:
    """Largest body of an import upload: two files of ``IMPORT_MAX_BYTES`` and
    the form around them (bytes)."""
    from rescue.settings import get_settings

    return 2 * get_settings().upload.import_max_bytes + FORM_OVERHEAD


def _too_large(max_bytes: int, size: int | None = None) -> PayloadTooLarge:
    """An import upload over ``max_bytes`` (:func:`import_body_limit`), naming
    ``IMPORT_MAX_BYTES``; ``size``: the body's announced length, if known."""
    from rescue.settings import get_settings

    limit = get_settings().upload.import_max_bytes
    accepted = {"max_file_bytes": limit, "max_body_bytes": max_bytes}
    if size is None:
        return PayloadTooLarge(
            _(
                "the request body is over {max_bytes} bytes; each file may be at most "
                "{limit} bytes (IMPORT_MAX_BYTES)",
                max_bytes=max_bytes,
                limit=limit,
            ),
            accepted=accepted,
        )
    return PayloadTooLarge(
        _(
            "the upload is {size} bytes, over {max_bytes}; each file may be at most "
            "{limit} bytes (IMPORT_MAX_BYTES)",
            size=size,
            max_bytes=max_bytes,
            limit=limit,
        ),
        accepted=accepted,
    )


async def _limited(stream: AsyncIterator[bytes], max_bytes: int | None) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if max_bytes is not None and seen > max_bytes:
            raise _too_large(max_bytes)
        yield chunk


async def parse_form(
    stream: AsyncIterator[bytes],
    boundary: bytes,
    *,
    part_limit: int,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """The form of a multipart body: name → str or UploadFile (a list when repeated).
    A file part goes to a temporary file (rolled to disk past 1 MiB), never whole
    into memory.

    Raises:
        InvalidInput: (400) malformed framing or headers, a part without a name,
            text that is not in its charset, an unknown charset, a file part
            without a plain non-empty filename.
        PayloadTooLarge: (413) more than ``part_limit`` parts, or a body over
            ``max_bytes`` (None: the route's own limit, applied by Litestar).
    """
    fields: defaultdict[str, list[Any]] = defaultdict(list)
    data: UploadFile | bytearray = bytearray()
    segment: MultipartSegment | None = None
    try:
        with PushMultipartParser(boundary, max_segment_count=part_limit) as parser:
            async for chunk in _with_end(_limited(stream, max_bytes)):
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment = part
                        if not segment.name:
                            raise InvalidInput(
                                _("a part of the form has no name"),
                                accepted=_('Content-Disposition: form-data; name="…"'),
                            )
                        _check_file(segment)
                        if segment.filename == "":
                            # A file input left empty: browsers send filename="" and
                            # no content (HTML: "no file selected"). Content under an
                            # empty filename is refused when the part ends.
                            data = bytearray()
                        elif segment.filename:
                            data = UploadFile(
                                content_type=segment.content_type or "application/octet-stream",
                                filename=segment.filename,
                                headers=dict(segment.headerlist),
                            )
                    elif part:
                        if isinstance(data, UploadFile):
                            await data.write(part)
                        else:
                            data.extend(part)
                    elif segment is not None:
                        if segment.filename == "":
                            if data:
                                raise InvalidInput(
                                    _(
                                        "the file in part {name!r} has an empty filename",
                                        name=segment.name,
                                    ),
                                    accepted=_(
                                        'a file part with a filename, e.g. filename="photo.jpg"'
                                    ),
                                )
                            data, segment = bytearray(), None  # no file chosen: absent
                            continue
                        if isinstance(data, UploadFile):
                            await data.seek(0)
                            fields[segment.name].append(data)
                        else:
                            fields[segment.name].append(_text(segment, bytes(data)))
                        data, segment = bytearray(), None
                if parser.closed:
                    break
    except ParserLimitReached:
        await _close(fields, data)
        raise PayloadTooLarge(
            _("the form has more than {limit} parts", limit=part_limit),
            accepted={"max_parts": part_limit},
        ) from None
    except ParserError as exc:
        await _close(fields, data)
        reason = str(exc.args[0]) if exc.args else ""
        if "header failed to decode" in reason:
            raise InvalidInput(
                _("the headers of a part (e.g. its filename) are not UTF-8"),
                accepted=_("part headers and filenames in UTF-8"),
            ) from None
        raise InvalidInput(
            _("the multipart/form-data body is malformed: {reason}", reason=reason),
            accepted=_("multipart/form-data as in RFC 7578, parts in UTF-8"),
        ) from None
    except (InvalidInput, PayloadTooLarge):
        await _close(fields, data)
        raise
    return {k: v if len(v) > 1 else v[0] for k, v in fields.items()}


async def _received(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive (not Litestar's ``Request.stream``, which
    refuses a body announced over the route's limit before reading any)."""
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return
        if body := message.get("body", b""):
            yield body
        if not message.get("more_body", False):
            return


class _HeadEnds(Exception):
    """The head of a form ends (:func:`form_head`): its first file part begins."""


async def form_head(
    stream: AsyncIterator[bytes], boundary: bytes, *, part_limit: int, max_bytes: int
) -> dict[str, Any]:
    """The text fields a multipart body starts with, up to its first file part,
    reading at most about ``max_bytes``: what a page needs to answer a body it
    will not read (the CSRF token, the values typed), without the files. Text
    that is malformed or not in its charset ends the head there (no error: the
    body is being refused anyway)."""
    fields: defaultdict[str, list[str]] = defaultdict(list)
    parser = PushMultipartParser(boundary, max_segment_count=part_limit)
    segment: MultipartSegment | None = None
    data = bytearray()
    seen = 0
    try:
        async for chunk in stream:
            for part in parser.parse(chunk):
                if isinstance(part, MultipartSegment):
                    if part.filename is not None or not part.name:
                        raise _HeadEnds  # the first file
                    segment, data = part, bytearray()
                elif part:
                    data.extend(part)
                elif segment is not None:
                    fields[segment.name].append(_text(segment, bytes(data)))
                    segment = None
            seen += len(chunk)
            if seen >= max_bytes or parser.closed:
                break
    except (_HeadEnds, ParserError, InvalidInput):
        pass
    finally:
        parser.close(check_complete=False)
    return {k: v if len(v) > 1 else v[0] for k, v in fields.items()}


class FormMiddleware:
    """Reads a multipart body with :func:`parse_form` before Litestar's extractor
    (and before its CSRF check, which reads the form too). An import upload
    (:data:`BODY_LIMIT`) whose ``Content-Length`` is over
    :func:`import_body_limit` is refused before any of it is read, naming the
    limit: 413 (Litestar's own limit of the route would answer a bare "Request
    Entity Too Large"), or on a page (:data:`REFUSAL_ON_PAGE`) the handler's
    answer, next to the file field."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        form: dict[str, Any] | None = None
        if scope["type"] == "http":
            from litestar import Request
            from litestar.utils.scope.state import ScopeState

            request: Request[Any, Any, Any] = Request(scope, receive)
            content_type, options = request.content_type
            state = ScopeState.from_scope(scope)
            handler = scope.get("route_handler")
            big = handler is not None and handler.opt.get(BODY_LIMIT) == "import"
            multipart = content_type == RequestEncodingType.MULTI_PART
            boundary = options.get("boundary")
            if multipart and state.form is Empty and not boundary:
                raise InvalidInput(
                    _("the multipart/form-data body has no boundary"),
                    accepted=_("Content-Type: multipart/form-data; boundary=…"),
                )
            announced = request.content_length if big else None
            if announced is not None and announced > import_body_limit():
                refused = _too_large(import_body_limit(), announced)
                if not (multipart and boundary and handler.opt.get(REFUSAL_ON_PAGE)):
                    raise refused
                state.form = await form_head(
                    _received(receive),
                    boundary.encode(),
                    part_limit=request.app.multipart_form_part_limit,
                    max_bytes=FORM_OVERHEAD,
                )
                scope.setdefault("state", {})[_REFUSED] = refused
            if multipart and boundary and state.form is Empty:
                state.form = form = await parse_form(
                    request.stream(),
                    boundary.encode(),
                    part_limit=request.app.multipart_form_part_limit,
                    max_bytes=import_body_limit() if big else None,
                )
        try:
            await self.app(scope, receive, send)
        finally:
            if form is not None:  # also when a guard refused the request
                await _close({k: v if isinstance(v, list) else [v] for k, v in form.items()}, None)


form_middleware = DefineMiddleware(FormMiddleware)
