"""Pages: log in, log out, change one's own password and language.

The login page uses the same password check and back-off as ``POST /auth/login``
(rescue.users.services.check_password) but opens a page session instead of
issuing a token.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from rescue.errors import InvalidInput, NotAuthenticated, TooManyRequests
from rescue.i18n import _
from rescue.permissions import Action, allow
from rescue.settings import LOCALES, get_settings
from rescue.users import services
from rescue.users.controllers import client_address
from rescue.web.errors import safe_next
from rescue.web.forms import read_form
from rescue.web.sessions import rotate_session

__all__ = ["AccountPages", "LoginPages"]


class LoginPages(Controller):
    """``/login`` and ``/logout``: no session needed to see the login page."""

    include_in_schema = False

    @get("/login", name="login")
    async def login_form(
        self,
        request: Request[Any, Any, Any],
        next: FromQuery[str] = "/",
        expired: FromQuery[bool] = False,
    ) -> Template:
        """The login form; ``expired`` says the session ended."""
        return Template(
            template_name="users/login.html",
            context={"next": safe_next(next), "expired": expired, "values": {}, "error": None},
        )

    @post("/login", status_code=303, media_type=MediaType.HTML)
    async def login(self, request: Request[Any, Any, Any]) -> Any:
        """Check the password (back-off as the API), open a session, go to ``next``.
        Wrong password: the form again with the error and the username kept."""
        values, _files = await read_form(request)
        username = values.get("username", "").strip()
        target = safe_next(values.get("next"))
        try:
            user_id = await services.check_password(
                username=username,
                password=values.get("password", ""),
                client=client_address(request),
                settings=get_settings().auth,
            )
        except TooManyRequests as exc:
            error = _(
                "Too many failed logins. Try again in {seconds} seconds.",
                seconds=exc.extra.get("retry_after", 1),
            )
            return _login_again(target, username, error, 429)
        except NotAuthenticated:
            return _login_again(target, username, _("Wrong username or password."), 401)
        rotate_session(request)
        request.set_session({"user_id": user_id})
        return Redirect(path=target, status_code=303)

    @post("/logout", status_code=303, media_type=MediaType.HTML)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        """End the session (its record is deleted) and show the login page."""
        request.clear_session()
        return Redirect(path="/login", status_code=303)


def _login_again(target: str, username: str, error: str, status: int) -> Template:
    return Template(
        template_name="users/login.html",
        context={
            "next": target,
            "expired": False,
            "values": {"username": username},
            "error": error,
        },
        status_code=status,
    )


class AccountPages(Controller):
    """The signed-in user's own settings."""

    path = "/account"
    include_in_schema = False
    guards = [allow(Action.workbench)]  # noqa: RUF012 - Litestar layer attribute

    @get("/", name="account")
    async def account(
        self, request: Request[Any, Any, Any], saved: FromQuery[str] = ""
    ) -> Template:
        return _account(saved=saved)

    @post("/password", status_code=303, media_type=MediaType.HTML)
    async def change_password(self, request: Request[Any, Any, Any]) -> Any:
        """Current password (checked, with back-off) and the new one twice."""
        values, _files = await read_form(request)
        errors: dict[str, str] = {}
        new = values.get("new_password", "")
        if new != values.get("new_password_again", ""):
            errors["new_password_again"] = _("The two new passwords differ.")
        elif len(new) < services.MIN_PASSWORD_LENGTH:
            errors["new_password"] = _("At least {n} characters.", n=services.MIN_PASSWORD_LENGTH)
        if not errors:
            try:
                await services.change_own_password(
                    by=request.user,
                    current=values.get("current_password", ""),
                    new=new,
                    client=client_address(request),
                    settings=get_settings().auth,
                )
            except NotAuthenticated:
                errors["current_password"] = _("The current password is wrong.")
            except TooManyRequests as exc:
                errors["current_password"] = _(
                    "Too many failed logins. Try again in {seconds} seconds.",
                    seconds=exc.extra.get("retry_after", 1),
                )
            except InvalidInput as exc:
                errors["new_password"] = exc.detail
        if errors:
            return _account(errors=errors, status=400)
        return Redirect(path="/account?saved=password", status_code=303)

    @post("/language", status_code=303, media_type=MediaType.HTML)
    async def language(self, request: Request[Any, Any, Any]) -> Redirect:
        """Page language: zh_CN, en, or empty for the browser's."""
        values, _files = await read_form(request)
        locale = values.get("locale", "")
        await services.set_locale(
            user_id=request.user.user_id, locale=locale if locale in LOCALES else ""
        )
        return Redirect(path="/account?saved=language", status_code=303)


def _account(
    *, saved: str = "", errors: dict[str, str] | None = None, status: int = 200
) -> Template:
    return Template(
        template_name="users/account.html",
        context={"saved": saved, "errors": errors or {}, "locales": LOCALES},
        status_code=status,
    )
