"""Helpers of the console's browser tests: sign in, press a row's button, wait for a page."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from playwright.async_api import Browser, Page, expect

OPERATORS: Final = {"ada": "admin", "alice": "approver", "bob": "approver", "otto": "operator",
                    "val": "viewer"}  # fmt: skip
VIEWPORT: Final = {"width": 1280, "height": 800}


def password_of(name: str) -> str:
    return f"{name}-pass-0123"


async def sign_in(browser: Browser, base_url: str, name: str) -> Page:
    context = await browser.new_context(viewport=VIEWPORT, locale="zh-CN", base_url=base_url)
    page = await context.new_page()
    await page.goto("/console/login")
    await page.get_by_label("Name 用户名").fill(name)
    await page.get_by_label("Password 密码").fill(password_of(name))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(base_url + "/console/")
    return page


async def press(page: Page, row_id: str, button: str, **fields: str) -> None:
    """Fill a row's form fields and press its button; wait for the page it leads to."""
    row = page.locator(f'tr[data-id="{row_id}"]')
    for name, value in fields.items():
        await row.locator(f'input[name="{name}"]').fill(value)
    async with page.expect_navigation():
        await row.get_by_role("button", name=button, exact=True).click()


async def shot(page: Page, shots: Path, name: str) -> None:
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=False)


async def csrf_of(page: Page) -> str:
    token = await page.locator('input[name="csrf"]').first.get_attribute("value")
    assert token
    return token
