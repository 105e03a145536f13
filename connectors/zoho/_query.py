"""Search and COQL of the Zoho sandbox (Part D6): a mixin of :class:`ZohoSandbox`."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from connectors.zoho._model import ModuleData, compare, refuse
from vault.sandbox import Request, Response, json_response

MAX_PER_PAGE: Final = 200
SEARCH_LIMIT: Final = 2_000
COQL_LIMIT: Final = 2_000
COQL_OFFSET_LIMIT: Final = 10_000


class ZohoQueries:
    """``GET /crm/v8/{Module}/search`` and ``POST /crm/v8/coql``."""

    @abstractmethod
    def _module(self, name: str) -> ModuleData: ...

    @abstractmethod
    def _body(self, request: Request) -> dict[str, Any]: ...

    @abstractmethod
    def _fields_param(
        self, module: ModuleData, request: Request, *, required: bool
    ) -> list[str] | None: ...

    @abstractmethod
    def _int_param(
        self, request: Request, name: str, default: int, low: int, high: int | None
    ) -> int: ...

    @abstractmethod
    def _render(
        self, module: ModuleData, record: Mapping[str, Any], fields: list[str] | None
    ) -> dict[str, Any]: ...

    def _search(self, module: ModuleData, request: Request) -> Response:
        fields = self._fields_param(module, request, required=False)
        per_page = self._int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        page = self._int_param(request, "page", 1, 1, None)
        if page * per_page > SEARCH_LIMIT:
            raise refuse(
                400, "LIMIT_REACHED", "search results exceed the limit", limit=SEARCH_LIMIT
            )
        test = self._search_test(module, request)
        rows = [r for r in module.records.values() if test(r)]
        rows.sort(key=lambda r: int(r["id"]), reverse=True)
        start = (page - 1) * per_page
        chunk = rows[start : start + per_page]
        if not chunk:
            return Response(204)
        return json_response(
            {
                "data": [self._render(module, r, fields) for r in chunk],
                "info": {
                    "per_page": per_page,
                    "count": len(chunk),
                    "page": page,
                    "more_records": start + per_page < min(len(rows), SEARCH_LIMIT),
                },
            }
        )

    def _search_test(
        self, module: ModuleData, request: Request
    ) -> Callable[[Mapping[str, Any]], bool]:
        """The record test of a search: ``criteria``, else ``email``, ``phone``, ``word``."""
        if (criteria := request.arg("criteria")) is not None:
            return self._criteria(module, criteria)
        digits = False
        if (email := request.arg("email")) is not None:
            wanted = email.casefold()
            names = ["Email", "Secondary_Email"]
        elif (phone := request.arg("phone")) is not None:
            digits = True
            wanted = re.sub(r"\D", "", phone)
            names = [s.api_name for s in module.layout.values() if s.data_type == "phone"]
        elif (word := request.arg("word")) is not None:
            wanted = word.casefold()
            kinds = ("text", "email", "textarea")
            names = [s.api_name for s in module.layout.values() if s.data_type in kinds]
        else:
            raise refuse(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                param_name="criteria",
            )

        def test(record: Mapping[str, Any]) -> bool:
            for name in names:
                held = str(record.get(name) or "")
                held = re.sub(r"\D", "", held) if digits else held.casefold()
                if wanted and wanted in held:
                    return True
            return False

        return test

    _CRITERION = re.compile(r"\(([A-Za-z_][A-Za-z0-9_]*):([a-z_]+):((?:\\.|[^)\\])*)\)")

    def _criteria(self, module: ModuleData, text: str) -> Callable[[Mapping[str, Any]], bool]:
        body = text.strip()
        if body.startswith("((") and body.endswith("))"):
            body = body[1:-1]
        terms = []
        joins = []
        position = 0
        while position < len(body):
            match = self._CRITERION.match(body, position)
            if match is None:
                raise refuse(400, "INVALID_QUERY", "invalid query formed", param_name="criteria")
            name, op, raw = match.groups()
            if name not in module.layout and name != "id":
                raise refuse(400, "INVALID_QUERY", "invalid query formed", api_name=name)
            if op not in (
                "equals",
                "not_equal",
                "starts_with",
                "in",
                "greater_than",
                "greater_equal",
                "less_than",
                "less_equal",
                "between",
            ):
                raise refuse(400, "INVALID_QUERY", "invalid query formed", operator=op)
            value = re.sub(r"\\(.)", r"\1", raw)
            terms.append((name, op, value))
            position = match.end()
            for joiner in ("and", "or"):
                if body.startswith(joiner, position):
                    joins.append(joiner)
                    position += len(joiner)
                    break
            else:
                if position < len(body):
                    raise refuse(
                        400, "INVALID_QUERY", "invalid query formed", param_name="criteria"
                    )
        if not terms or len(terms) > 10:
            raise refuse(400, "INVALID_QUERY", "invalid query formed", param_name="criteria")

        def one(record: Mapping[str, Any], term: tuple[str, str, str]) -> bool:
            name, op, value = term
            held = "" if record.get(name) is None else str(record.get(name)).casefold()
            wanted = value.casefold()
            if op == "equals":  # Zoho: "equals" behaves like "contains"
                return wanted in held
            if op == "not_equal":
                return wanted not in held
            if op == "starts_with":
                return held.startswith(wanted)
            if op == "in":
                return held in {v.strip().casefold() for v in value.split(",")}
            return compare(held, op, wanted)

        def test(record: Mapping[str, Any]) -> bool:
            result = one(record, terms[0])
            for joiner, term in zip(joins, terms[1:], strict=False):
                result = (
                    (result and one(record, term))
                    if joiner == "and"
                    else (result or one(record, term))
                )
            return result

        return test

    _COQL = re.compile(
        r"\s*select\s+(?P<fields>.+?)\s+from\s+(?P<module>\w+)"
        r"(?:\s+where\s+(?P<where>.+?))?"
        r"(?:\s+order\s+by\s+(?P<order>\w+)(?:\s+(?P<dir>asc|desc))?)?"
        r"(?:\s+limit\s+(?P<a>\d+)(?:\s*,\s*(?P<b>\d+))?)?\s*;?\s*",
        re.IGNORECASE | re.DOTALL,
    )
    _CONDITION = re.compile(r"\s*(\w+)\s*(>=|<=|!=|=|>|<|like)\s*'((?:''|[^'])*)'\s*", re.I)

    def _coql(self, request: Request) -> Response:
        body = self._body(request)
        query = body.get("select_query")
        if not isinstance(query, str) or not query.strip():
            raise refuse(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                param_name="select_query",
            )
        match = self._COQL.fullmatch(query)
        if match is None:
            raise refuse(
                400, "SYNTAX_ERROR", "error occured while parsing the query", clause="select"
            )
        if not match["where"]:
            raise refuse(
                400, "SYNTAX_ERROR", "error occured while parsing the query", clause="where"
            )
        module = self._module(match["module"])
        fields = [f.strip() for f in match["fields"].split(",")]
        for name in fields:
            if name != "id" and name not in module.layout:
                raise refuse(400, "INVALID_QUERY", "invalid query formed", column_name=name)
        if match["b"] is not None:
            offset, limit = int(match["a"]), int(match["b"])
        else:
            offset, limit = 0, int(match["a"] or 200)
        if limit > COQL_LIMIT or offset + limit > COQL_OFFSET_LIMIT:
            raise refuse(400, "LIMIT_EXCEEDED", "limit exceeded", clause="limit", limit=COQL_LIMIT)
        parts = re.split(r"\s+(and|or)\s+", match["where"].strip(), flags=re.IGNORECASE)
        conditions = []
        for item in parts[::2]:
            cond = self._CONDITION.fullmatch(item)
            if cond is None or (cond[1] not in module.layout and cond[1] != "id"):
                raise refuse(
                    400, "SYNTAX_ERROR", "error occured while parsing the query", clause="where"
                )
            conditions.append((cond[1], cond[2].lower(), cond[3].replace("''", "'")))
        joins = [j.lower() for j in parts[1::2]]

        def value_of(record: Mapping[str, Any], name: str, wanted: str) -> tuple[Any, Any]:
            held = record.get(name)
            if name in ("Created_Time", "Modified_Time"):
                try:
                    return held, datetime.fromisoformat(wanted).timestamp()
                except ValueError:
                    raise refuse(
                        400, "SYNTAX_ERROR", "error occured while parsing the query", clause="where"
                    ) from None
            if name == "id":
                return int(str(held)), int(wanted) if wanted.isdigit() else -1
            return ("" if held is None else str(held)), wanted

        def one(record: Mapping[str, Any], condition: tuple[str, str, str]) -> bool:
            name, op, wanted = condition
            held, target = value_of(record, name, wanted)
            if op == "like":
                pattern = re.escape(wanted).replace("%", ".*")
                return re.fullmatch(pattern, str(held), re.IGNORECASE) is not None
            return compare(
                held,
                {
                    "=": "eq",
                    "!=": "ne",
                    ">": "greater_than",
                    ">=": "greater_equal",
                    "<": "less_than",
                    "<=": "less_equal",
                }[op],
                target,
            )

        def test(record: Mapping[str, Any]) -> bool:
            result = one(record, conditions[0])
            for joiner, condition in zip(joins, conditions[1:], strict=False):
                result = (
                    (result and one(record, condition))
                    if joiner == "and"
                    else (result or one(record, condition))
                )
            return result

        rows = [r for r in module.records.values() if test(r)]
        order = match["order"] or "id"
        if order != "id" and order not in module.layout:
            raise refuse(400, "INVALID_QUERY", "invalid query formed", column_name=order)
        rows.sort(
            key=lambda r: int(r["id"]) if order == "id" else (r.get(order) or 0),
            reverse=(match["dir"] or "asc").lower() == "desc",
        )
        chunk = rows[offset : offset + limit]
        if not chunk:
            return Response(204)
        return json_response(
            {
                "data": [self._render(module, r, fields) for r in chunk],
                "info": {"count": len(chunk), "more_records": offset + limit < len(rows)},
            }
        )
