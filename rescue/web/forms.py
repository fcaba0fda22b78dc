"""Forms on pages: reading, checking with the API's own schemas, errors per field,
and once-only submission.

A page handler reads its form with :func:`read_form`, converts it to the same
msgspec Struct the JSON API takes with :func:`parse` (so no rule is written
twice), and on failure re-renders the form with ``errors`` (field → message in
the page's language) and ``values`` (what was typed). Forms that create
something carry ``{{ form_key() }}``; the handler runs its action through
:func:`once`, so a double-submitted form does not create two records.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import typing
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile
from markupsafe import Markup

from rescue import clock
from rescue.errors import Conflict
from rescue.i18n import _
from rescue.web.tables import FormSubmission

__all__ = ["FORM_KEY", "form_key_input", "once", "parse", "read_form"]

T = TypeVar("T")

#: Name of the hidden field holding a form's once-only key.
FORM_KEY = "_form_key"


def form_key_input(value: str | None = None) -> Markup:
    """The hidden once-only key field (a new random key unless re-rendering)."""
    key = value if value and re.fullmatch(r"[A-Za-z0-9_-]{16,64}", value) else None
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        FORM_KEY, key or secrets.token_urlsafe(24)
    )


async def read_form(request: Request[Any, Any, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """(text fields, uploaded files) of a urlencoded or multipart form; the first
    value of a repeated field. ``_csrf_token`` is left out."""
    form = await request.form()
    values: dict[str, str] = {}
    files: dict[str, Any] = {}
    for name, value in form.multi_items():
        if name == "_csrf_token":
            continue
        if isinstance(value, UploadFile):
            if value.filename and name not in files:
                files[name] = value
        elif name not in values:
            values[name] = str(value)
    return values, files


def _hints(struct: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(struct, include_extras=True)


def _base_types(hint: Any) -> set[type]:
    found: set[type] = set()
    stack = [hint]
    while stack:
        item = stack.pop()
        origin = typing.get_origin(item)
        if origin is typing.Annotated:
            stack.append(typing.get_args(item)[0])
        elif origin is not None:
            stack.extend(typing.get_args(item))
        elif isinstance(item, type):
            found.add(item)
    return found


def _prepare(struct: type[Any], values: dict[str, str]) -> dict[str, Any]:
    """Form strings → what msgspec's lax conversion takes: empty fields left out,
    checkboxes as booleans, local date-times (China Standard Time) made aware."""
    out: dict[str, Any] = {}
    for name, hint in _hints(struct).items():
        types = _base_types(hint)
        raw = values.get(name)
        if bool in types and not (types & {int, str}):
            out[name] = raw not in (None, "", "0", "false", "off")
            continue
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip()
        if datetime in types:
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                out[name] = raw  # msgspec names the problem
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=clock.station_tz())
            out[name] = moment
            continue
        out[name] = raw
    return out


_BOUND = re.compile(r"Expected `(\w+)`(?: of length)? (>=|<=|>|<) ([\d.]+)")


def _message(raw: str, hint: Any) -> str:
    """A msgspec validation message in the page's language."""
    if "missing required field" in raw or "of length >= 1" in raw:
        return _("This field is required.")
    bound = _BOUND.search(raw)
    if bound:
        _kind, op, number = bound.groups()
        if "of length" in raw:
            return (
                _("At most {n} characters.", n=number)
                if op.startswith("<")
                else _("At least {n} characters.", n=number)
            )
        return (
            _("Must be at most {n}.", n=number)
            if op.startswith("<")
            else _("Must be at least {n}.", n=number)
        )
    if "Invalid enum value" in raw or any(
        isinstance(t, type) and issubclass(t, Enum) for t in _base_types(hint)
    ):
        return _("Choose one of the listed values.")
    expected = re.search(r"Expected `([^`]*)`", raw)
    words = set(re.findall(r"\w+", expected.group(1))) if expected else set()
    types = _base_types(hint)
    if "int" in words or (int in types and bool not in types):
        return _("Enter a whole number.")
    if "float" in words or float in types:
        return _("Enter a number.")
    if "datetime" in words or datetime in types:
        return _("Enter a date and time.")
    if "date" in words or date in types:
        return _("Enter a date as YYYY-MM-DD.")
    return _("This value is not accepted.")


def _field_problems(struct: type[Any], data: dict[str, Any]) -> dict[str, str]:
    """Every field's own problem (type, bounds, a required field left empty), each
    field checked alone with its annotated type, so one submit names them all."""
    problems: dict[str, str] = {}
    hints = _hints(struct)
    for info in msgspec.structs.fields(struct):
        name = info.encode_name
        hint = hints.get(info.name, info.type)
        if name not in data:
            if info.required:
                problems[name] = _("This field is required.")
            continue
        try:
            msgspec.convert(data[name], hint, strict=False)
        except msgspec.ValidationError as exc:
            problems[name] = _message(str(exc), hint)
    return problems


def parse(
    struct: type[T],
    values: dict[str, str],
    *,
    check: Callable[[Any], dict[str, str]] | None = None,
    **fixed: Any,
) -> tuple[T | None, dict[str, str]]:
    """Convert form ``values`` (plus ``fixed`` fields) to ``struct``, collecting
    every problem of the submit at once (issue 10 item 3).

    Each field is checked alone against its annotated type (msgspec itself stops
    at the first problem); ``check`` (the service's own cross-field rules, e.g.
    :func:`rescue.cases.services.intake_problems`) runs on the struct made of the
    fields that passed, so a wrong height and a reversed age range show together.

    Returns:
        (the struct, {}) or (None, {field: message in the page's language});
        ``"__all__"`` holds a problem that belongs to no one field.
    """
    data = {**_prepare(struct, values), **fixed}
    problems = _field_problems(struct, data)
    partial = {k: v for k, v in data.items() if k not in problems}
    try:
        result: T | None = msgspec.convert(partial, struct, strict=False)
    except msgspec.ValidationError as exc:
        result = None
        if not problems:
            raw = str(exc)
            match = re.search(r"at `\$\.(\w+)", raw) or re.search(r"field `(\w+)`", raw)
            field = match.group(1) if match else "__all__"
            problems[field] = _message(raw, _hints(struct).get(field))
    if result is not None and check is not None:
        for field, message in check(result).items():
            problems.setdefault(field, message)
    if problems:
        return None, problems
    return result, {}


async def once(
    request: Request[Any, Any, Any],
    values: dict[str, str],
    action: Callable[[], Awaitable[str]],
    *,
    wait_seconds: float = 10.0,
) -> str:
    """Run ``action`` (which returns the URL of what it made) once per form key.

    A repeat of a key already done returns the first result's URL without
    running ``action``; a repeat while the first is still running waits for it
    (up to ``wait_seconds``). If ``action`` fails, the key is released so the
    corrected form can be sent again.

    Raises:
        Conflict: the first submission is still running after ``wait_seconds``.
    """
    key = values.get(FORM_KEY, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", key):
        return await action()
    user_id = getattr(request.user, "user_id", 0)
    claimed = (
        await FormSubmission.insert(FormSubmission(key=key, user_id=user_id, result_url=""))
        .on_conflict(target=FormSubmission.key, action="DO NOTHING")
        .returning(FormSubmission.id)
    )
    if not claimed:
        waited = 0.0
        while True:
            row = (
                await FormSubmission.select(FormSubmission.result_url, FormSubmission.user_id)
                .where(FormSubmission.key == key)
                .first()
            )
            if row is None:  # the first attempt failed and released the key
                return await once(request, values, action, wait_seconds=wait_seconds)
            if row["result_url"] and row["user_id"] == user_id:
                return str(row["result_url"])
            if waited >= wait_seconds:
                raise Conflict(_("This form was already sent and is still being processed."))
            await asyncio.sleep(0.2)
            waited += 0.2
    try:
        url = await action()
    except BaseException:
        await FormSubmission.delete().where(FormSubmission.key == key)
        raise
    await FormSubmission.update({FormSubmission.result_url: url[:500]}).where(
        FormSubmission.key == key
    )
    return url
