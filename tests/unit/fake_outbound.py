"""A stand-in for :class:`~modeldeploy.analysis.outbound.Outbound` in unit tests of its callers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modeldeploy.analysis.outbound import Answer, Outbound


@dataclass(frozen=True)
class FakeOutbound(Outbound):
    """Records each call and answers with ``respond(method, url, headers, body)``."""

    respond: Callable[..., Answer] = field(default=lambda *a: Answer(200, {}, b""))
    calls: list[dict[str, Any]] = field(default_factory=list)

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        **kwargs: Any,
    ) -> Answer:
        self.calls.append(
            {"method": method, "url": url, "headers": dict(headers or {}), "body": body, **kwargs}
        )
        return self.respond(method, url, headers, body)
