"""API-key authentication: keys are stored as SHA-256 digests and compared in constant time.

Clients send ``X-API-Key: <key>`` (or ``Authorization: Bearer <key>``). A missing or unknown
key is 401; a known key without the endpoint's scope is 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from fastapi import Request

from gateway.errors import Forbidden, Unauthorized
from gateway.settings import ApiKey, Scope


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def find_key(keys: Sequence[ApiKey], presented: str) -> ApiKey | None:
    """The stored key matching ``presented``; every stored digest is compared (no early exit
    on the first mismatch), each with ``hmac.compare_digest``."""
    digest = hash_key(presented).encode()
    found = None
    for key in keys:
        if hmac.compare_digest(digest, key.sha256.encode()):
            found = key
    return found


def authorize(keys: Sequence[ApiKey], request: Request, scope: Scope) -> ApiKey:
    presented = presented_key(request)
    if presented is None:
        raise Unauthorized("missing API key: send it in the X-API-Key header")
    key = find_key(keys, presented)
    if key is None:
        raise Unauthorized("unknown API key")
    if scope not in key.scopes:
        raise Forbidden(f"API key '{key.name}' lacks the '{scope}' scope")
    return key
