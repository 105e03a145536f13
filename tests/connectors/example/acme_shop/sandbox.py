"""Acme Shop on loopback: its token endpoint and customer pages, seeded, for tests."""

from __future__ import annotations

from typing import Any

from vault.sandbox import Request, Response, Sandbox, json_response

PAGE = 5


class AcmeSandbox(Sandbox):
    name = "acme"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        count = 12 if self.records is None else self.records
        self.customers = [
            {
                "id": f"acme-{n}",
                "name": f"客户{n}",
                "phone": f"1370000{n:04d}",
                "updated": "2026-01-01 08:00:00",
            }
            for n in range(count)
        ]
        self.token = "token-1"
        self.token_calls = 0

    def credentials(self) -> dict[str, str]:
        return {"api_key": "acme-key"}

    def expire_tokens(self) -> None:
        self.token = f"token-{self.token_calls + 1}-new"

    def handle(self, request: Request) -> Response:
        if request.path == "/token":
            if (request.json() or {}).get("api_key") != "acme-key":
                return json_response({"message": "bad api_key"}, 403)
            self.token_calls += 1
            self.token = f"token-{self.token_calls}"
            return json_response({"token": self.token, "expires_in": 600})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return json_response({"message": "token expired"}, 401)
        if request.path == "/customers":
            page = int(request.arg("page") or 1)
            rows = self.customers[(page - 1) * PAGE : page * PAGE]
            return json_response({"customers": rows, "more": page * PAGE < len(self.customers)})
        return json_response({"message": "no such path"}, 404)
