"""Page objects: one per screen, so the tests read like the staff's work."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass
class LoginPage:
    page: Any

    async def open(self, next_path: str = "/") -> LoginPage:
        await self.page.goto(f"/login?next={next_path}")
        return self

    async def log_in(self, username: str, password: str) -> None:
        await self.page.fill("#username", username)
        await self.page.fill("#password", password)
        async with self.page.expect_navigation():
            await self.page.click("form[action='/login'] button[type=submit]")

    async def error(self) -> str:
        return str(await self.page.inner_text("#login-error"))


@dataclass
class IntakePage:
    page: Any

    async def open(self) -> IntakePage:
        await self.page.goto("/cases/new")
        return self

    async def fill(self, **fields: str) -> IntakePage:
        for name, value in fields.items():
            if name == "sex":
                await self.page.select_option("#f-sex", value)
            else:
                await self.page.fill(f"#f-{name}", value)
        return self

    async def take_photo(self, path: str) -> IntakePage:
        await self.page.set_input_files("#f-photo", path)
        return self

    async def submit(self) -> None:
        async with self.page.expect_navigation():
            await self.page.click("#intake button[type=submit]")

    async def field_error(self, name: str) -> str:
        return str(await self.page.inner_text(f"#e-{name}"))


@dataclass
class CasePage:
    page: Any

    async def open(self, case_id: int) -> CasePage:
        await self.page.goto(f"/cases/{case_id}")
        return self

    def case_id(self) -> int:
        match = re.search(r"/cases/(\d+)", self.page.url)
        assert match, self.page.url
        return int(match.group(1))

    async def status(self) -> str:
        return str(await self.page.inner_text("#case-status"))

    async def wait_for_photos_processed(self, timeout_ms: int = 120_000) -> list[str]:
        """Wait (htmx polling, no reload) until no photo is pending; their statuses."""
        await self.page.wait_for_selector(
            "#photos-block:not([hx-trigger])", state="attached", timeout=timeout_ms
        )
        return [
            str(s)
            for s in await self.page.eval_on_selector_all(
                "#photos-block figure.photo", "els => els.map(e => e.dataset.status)"
            )
        ]

    async def moves(self) -> list[str]:
        return [
            str(m)
            for m in await self.page.eval_on_selector_all(
                "#moves details.move", "els => els.map(e => e.dataset.move)"
            )
        ]

    async def move(self, to: str, reason: str, **fields: str) -> None:
        block = self.page.locator(f"details.move[data-move='{to}']")
        await block.locator("summary").click()
        for name, value in fields.items():
            await self.page.fill(f"#m-{to}-{name}", value)
        await self.page.fill(f"#m-{to}-reason", reason)
        async with self.page.expect_navigation():
            await block.locator("button[type=submit]").click()


@dataclass
class AnnouncementListPage:
    """The public 寻亲公告 list (no login)."""

    page: Any

    async def open(self, query: str = "") -> AnnouncementListPage:
        await self.page.goto(f"/family{query}")
        return self

    async def filter(self, **fields: str) -> None:
        if not await self.page.is_visible("#f-sex"):
            await self.page.click("details.filters summary")
        for name, value in fields.items():
            if name == "sex":
                await self.page.select_option("#f-sex", value)
            else:
                await self.page.fill(f"#f-{name}", value)
        async with self.page.expect_navigation():
            await self.page.click("#filters button[type=submit]")

    async def names(self) -> list[str]:
        return [
            str(n).strip()
            for n in await self.page.eval_on_selector_all(
                "#announcements li a b", "els => els.map(e => e.textContent)"
            )
        ]

    async def open_first(self) -> None:
        async with self.page.expect_navigation():
            await self.page.click("#announcements li a")


@dataclass
class SearchRequestFormPage:
    """网上寻亲登记 (no login)."""

    page: Any

    async def open(self) -> SearchRequestFormPage:
        await self.page.goto("/family/request")
        return self

    async def fill(self, **fields: str) -> SearchRequestFormPage:
        for name, value in fields.items():
            if name == "sex":
                await self.page.select_option("#f-sex", value)
            else:
                await self.page.fill(f"#f-{name}", value)
        return self

    async def attach(self, *paths: str) -> SearchRequestFormPage:
        await self.page.set_input_files("#f-photos", list(paths))
        return self

    async def consent(self, personal: bool = True, face: bool = True) -> SearchRequestFormPage:
        if personal:
            await self.page.check("#f-consent_personal")
        if face:
            await self.page.check("#f-consent_face")
        return self

    async def submit(self) -> None:
        async with self.page.expect_navigation():
            await self.page.click("#request button[type=submit]")

    async def tracking_code(self) -> str:
        return str(await self.page.inner_text("#code")).strip()

    async def field_error(self, name: str) -> str:
        return str(await self.page.inner_text(f"#e-{name}"))


@dataclass
class RequestStatusPage:
    page: Any

    async def check(self, code: str) -> None:
        await self.page.goto("/family/status")
        await self.page.fill("#f-code", code)
        async with self.page.expect_navigation():
            await self.page.click("#status-form button[type=submit]")

    async def status(self) -> str:
        return str(await self.page.get_attribute("#status-label", "data-status"))

    async def answer(self, message: str, *paths: str, consent: bool = True) -> None:
        """Answer "more information needed" on the status page (after :meth:`check`)."""
        await self.page.fill("#reply-form #f-message", message)
        if paths:
            await self.page.set_input_files("#reply-form #f-photos", list(paths))
        if consent:
            await self.page.check("#reply-form #f-consent_face")
        async with self.page.expect_navigation():
            await self.page.click("#reply-form button[type=submit]")

    async def main_text(self) -> str:
        return str(await self.page.inner_text("main"))


@dataclass
class ModerationPage:
    """Staff: one online search request and its moderation steps."""

    page: Any

    async def open_first_in_queue(self) -> None:
        await self.page.goto("/search-requests")
        async with self.page.expect_navigation():
            await self.page.click("#queue tbody a")

    async def decide(self, decision: str, message: str = "") -> None:
        if message:
            await self.page.fill("#f-message", message)
        async with self.page.expect_navigation():
            await self.page.click(f"#d-{decision}")

    async def status(self) -> str:
        return str(await self.page.get_attribute("#request-status", "data-status"))
