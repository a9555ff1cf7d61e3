"""What every console handler reads from its request: the services, the signed-in session,
the acting operator, and the role check (`require`: 403 for a role without the right)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api.services import SERVICES, Services
from gateway.console.sessions import LoginThrottle, Session, SessionStore, key_prefix
from gateway.operators.model import Actor, may

COOKIE: Final = "paygate_console"
SESSION_KEY: Final = web.RequestKey("console_session", Session)


def services_of(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def sessions_of(request: web.Request) -> SessionStore:
    services = services_of(request)
    prefix = key_prefix(services.settings.database_url)
    return SessionStore(services.redis, prefix, services.settings.console_idle_s)


def throttle_of(request: web.Request) -> LoginThrottle:
    services = services_of(request)
    return LoginThrottle(services.redis, key_prefix(services.settings.database_url))


def session_of(request: web.Request) -> Session:
    session: Session = request[SESSION_KEY]
    return session


def require(request: web.Request, role: str) -> Actor:
    """The acting operator, if their role may do what `role` may; else 403."""
    s = session_of(request)
    if not may(s.role, role):
        raise web.HTTPForbidden(text=f"this needs the {role} role")
    return Actor(s.operator_id, s.name, s.role, "console")


async def form_text(request: web.Request, name: str, *, required: bool = True,
                    max_len: int = 500) -> str:  # fmt: skip
    """A form field as stripped text (400 when required and empty, or too long)."""
    value = (await request.post()).get(name)
    text = value.strip() if isinstance(value, str) else ""
    if (required and not text) or len(text) > max_len:
        raise web.HTTPBadRequest(text=f"{name} is required (at most {max_len} characters)")
    return text


async def form_int(request: web.Request, name: str, *, minimum: int = 0) -> int:
    text = await form_text(request, name, max_len=20)
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number") from None
    if value < minimum:
        raise web.HTTPBadRequest(text=f"{name} must be at least {minimum}")
    return value
