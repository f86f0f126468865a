"""Per-request authorisation: bearer token or session cookie → role; writes also need CSRF and a same origin."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from perceus.web.auth import COOKIE, CSRF_HEADER, Role, Tokens


@dataclass(frozen=True)
class Caller:
    token: str
    role: Role
    remote: str

    @property
    def actor(self) -> str:
        return self.role.name.lower()


def token_of(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE, "")


def caller(request: Request, tokens: Tokens) -> Caller:
    token = token_of(request)
    remote = request.client.host if request.client else ""
    return Caller(token, tokens.role(token), remote)


def denied(status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="perceus"'} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def check_read(request: Request, tokens: Tokens) -> Caller | Response:
    who = caller(request, tokens)
    if who.role < Role.READ:
        return denied(401, "a read or admin token is needed (Authorization: Bearer …, or /login?token=…)")
    return who


def check_write(request: Request, tokens: Tokens) -> Caller | Response:
    """Admin token, the CSRF token bound to it (header X-CSRF-Token), and no foreign Origin."""
    who = caller(request, tokens)
    if who.role < Role.READ:
        return denied(401, "an admin token is needed")
    if who.role < Role.ADMIN:
        return denied(403, "this token may only read; approve and revoke need the admin token")
    if not tokens.csrf_ok(who.token, request.headers.get(CSRF_HEADER, "")):
        return denied(403, "missing or bad CSRF token (X-CSRF-Token)")
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
        return denied(403, f"cross-origin write refused (Origin {origin})")
    return who
