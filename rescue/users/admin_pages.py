"""Administration pages: users, tokens, the audit trail, re-matching.

Same services and permission rows as ``/api/admin/*``, ``/api/tokens`` and
``/api/audit`` (user_admin, token_manage, audit_read, rematch).
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import date, timedelta
from typing import Any

import anyio.to_thread
from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from rescue import clock
from rescue.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from rescue.i18n import _, label
from rescue.permissions import Action, allow
from rescue.schemas import PathId
from rescue.settings import get_settings
from rescue.users import services
from rescue.users.tables import Role
from rescue.web.forms import once, read_form

__all__ = ["AdminPages"]


def _users_page(
    rows: list[dict[str, Any]],
    *,
    errors: dict[str, Any] | None = None,
    values: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> Template:
    from rescue.web.forms import form_key_input

    return Template(
        template_name="admin/users.html",
        context={
            "users": rows,
            "roles": [(r.value, label(r)) for r in Role],
            "errors": errors or {},
            "values": values or {},
            "notice": notice,
            "form_key": form_key_input((values or {}).get("_form_key")),
        },
        status_code=status,
    )


async def _all_users() -> list[dict[str, Any]]:
    rows, _total = await services.list_users(limit=500, offset=0)
    return rows


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


class AdminPages(Controller):
    path = "/admin"
    include_in_schema = False

    @get("/users", guards=[allow(Action.user_admin)])
    async def users(self) -> Template:
        return _users_page(await _all_users())

    @post("/users", guards=[allow(Action.user_admin)], status_code=303, media_type=MediaType.HTML)
    async def create(self, request: Request[Any, Any, Any]) -> Any:
        """Create a user with a first password (shown once to the admin)."""
        values, _files = await read_form(request)
        errors: dict[str, str] = {}
        username = values.get("username", "").strip()
        if not username:
            errors["username"] = _("This field is required.")
        password = secrets.token_urlsafe(12)
        created: list[str] = []

        async def action() -> str:
            await services.create_user(
                username=username,
                role=values.get("role", ""),
                station=values.get("station", "").strip(),
                display_name=values.get("display_name", "").strip(),
                scope=values.get("scope", ""),
                password=password,
            )
            created.append(username)
            return "/admin/users"

        if not errors:
            try:
                url = await once(request, values, action)
                if not created:  # a repeated submission: the first one showed the password
                    return Redirect(path=url, status_code=303)
                # The password is shown in this answer only, never stored in the session.
                return _users_page(
                    await _all_users(),
                    notice=_(
                        "User {username} created. First password (shown once): {password}",
                        username=username,
                        password=password,
                    ),
                    status=201,
                )
            except Conflict:
                errors["username"] = _("This username is taken.")
            except InvalidInput as exc:  # next to the field the service names
                errors[str(exc.extra.get("field") or "__all__")] = exc.detail
        return _users_page(await _all_users(), errors=errors, values=values, status=400)

    @post(
        "/users/{user_id:int}/assignment",
        guards=[allow(Action.user_admin)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def assign(self, user_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Change a user's role, station and covered stations
        (:func:`rescue.users.services.change_assignment`); errors next to the field
        in the user's row, what was typed kept."""
        values, _files = await read_form(request)
        try:
            await services.change_assignment(
                user_id=user_id,
                role=values.get("role", ""),
                station=values.get("station", ""),
                scope=values.get("scope", ""),
                by=request.user,
            )
        except (InvalidInput, Conflict) as exc:
            row = {str(exc.extra.get("field") or "__all__"): exc.detail}
            row["_station"] = values.get("station", "")
            return _users_page(
                await _all_users(), errors={f"assign_{user_id}": row}, status=exc.status_code
            )
        return Redirect(path="/admin/users", status_code=303)

    @post(
        "/users/{user_id:int}/deactivate",
        guards=[allow(Action.user_admin)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def deactivate(self, user_id: PathId, request: Request[Any, Any, Any]) -> Any:
        try:
            await services.deactivate_user(user_id=user_id, by=request.user)
        except Conflict as exc:
            return _users_page(await _all_users(), errors={"__all__": exc.detail}, status=409)
        return Redirect(path="/admin/users", status_code=303)

    @post(
        "/users/{user_id:int}/password",
        guards=[allow(Action.user_admin)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def reset_password(self, user_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """A new random password, shown once (in this answer only) to hand over."""
        user = await services.get_user(user_id=user_id)
        password = secrets.token_urlsafe(12)
        await services.set_password(username=user["username"], password=password)
        return _users_page(
            await _all_users(),
            notice=_(
                "New password of {username} (shown once): {password}",
                username=user["username"],
                password=password,
            ),
        )

    @get("/tokens", guards=[allow(Action.token_manage)])
    async def tokens(self, request: Request[Any, Any, Any]) -> Template:
        """The caller's API tokens (an admin: everyone's), never their secret."""
        rows = await services.list_tokens(
            by=request.user, all_users=request.user.role == Role.admin
        )
        return Template(template_name="admin/tokens.html", context={"tokens": rows})

    @post(
        "/tokens/{token_id:int}/revoke",
        guards=[allow(Action.token_manage)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def revoke(self, token_id: PathId, request: Request[Any, Any, Any]) -> Redirect:
        with contextlib.suppress(NotFound, PermissionDenied):  # not theirs: nothing to revoke
            await services.revoke_token(token_id=token_id, by=request.user)
        return Redirect(path="/admin/tokens", status_code=303)

    @get("/audit", guards=[allow(Action.audit_read)])
    async def audit(
        self,
        user_id: FromQuery[str] = "",
        case_id: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
        page: FromQuery[int] = 1,
    ) -> Template:
        """The audit trail, newest first, by user, case and local dates (inclusive)."""
        from rescue.audit.services import list_records

        day_from, day_to = _day(since), _day(until)
        page = max(page, 1)
        records = await list_records(
            limit=50,
            offset=(page - 1) * 50,
            user_id=int(user_id) if user_id.isdigit() else None,
            case_id=int(case_id) if case_id.isdigit() else None,
            since=clock.start_of_local_day(day_from) if day_from else None,
            until=clock.start_of_local_day(day_to + timedelta(days=1)) if day_to else None,
        )
        return Template(
            template_name="admin/audit.html",
            context={
                "records": records,
                "page": page,
                "filters": {"user_id": user_id, "case_id": case_id, "since": since, "until": until},
            },
        )

    @get("/rematch", guards=[allow(Action.rematch)])
    async def rematch(self, run: FromQuery[int | None] = None) -> Template:
        """Start a re-matching run; its progress bar updates by itself (htmx)."""
        from rescue.matching.rematch import get_rematch

        current = await get_rematch(run_id=run) if run else None
        return Template(template_name="admin/rematch.html", context={"run": current})

    @get("/rematch/{run_id:int}/progress", guards=[allow(Action.rematch)])
    async def progress(self, run_id: PathId) -> Template:
        from rescue.matching.rematch import get_rematch

        return Template(
            template_name="admin/_rematch_progress.html",
            context={"run": await get_rematch(run_id=run_id)},
        )

    @post("/rematch", guards=[allow(Action.rematch)], status_code=303, media_type=MediaType.HTML)
    async def start(self, request: Request[Any, Any, Any]) -> Redirect:
        from rescue.matching.rematch import start_rematch
        from workers.actors import rematch as actor

        async def enqueue(run_id: int) -> None:
            await anyio.to_thread.run_sync(actor.send, run_id)

        run = await start_rematch(by=request.user, settings=get_settings(), enqueue=enqueue)
        return Redirect(path=f"/admin/rematch?run={run.id}", status_code=303)
