"""Every page goes through the one permission table (rescue.permissions)."""

from __future__ import annotations

#: Pages open without a session (login itself).
PUBLIC_PAGES = {"/login", "/logout"}
#: Routes that are not pages of the workbench.
NOT_PAGES = ("/api", "/auth", "/public", "/static", "/schema", "/health", "/metrics")
#: The public door (rescue.family_requests.pages.PublicPages): no login, shows only
#: what is published; its forms are rate-limited instead.
FAMILY = "/family"


def test_every_page_route_has_exactly_one_allow_guard():
    from rescue.app import create_app

    problems = []
    for route in create_app().routes:
        if route.path.startswith(NOT_PAGES) or route.path in PUBLIC_PAGES:
            continue
        if route.path == FAMILY or route.path.startswith(FAMILY + "/"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.http_methods == {"OPTIONS"}:  # Litestar's automatic answer
                continue
            names = [g.__name__ for g in handler.resolve_guards()]
            if len([n for n in names if n.startswith("allow_")]) != 1:
                problems.append(f"{sorted(handler.http_methods)} {route.path}: {names}")
    assert problems == []


def test_page_forms_carry_the_csrf_field():
    """A form posting to the app without {{ csrf_input }} would always be refused."""
    import re

    from rescue.web.templating import TEMPLATE_DIR

    problems = []
    for path in TEMPLATE_DIR.rglob("*.html"):
        text = path.read_text()
        for form in re.findall(r"<form[^>]*method=\"post\".*?</form>", text, flags=re.S):
            if "csrf_input" not in form:
                problems.append(f"{path.name}: {form[:80]}")
    assert problems == []
