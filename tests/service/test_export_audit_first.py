"""``POST /v1/exports`` fails closed: no audit event, no data (503); a client that hangs up
mid-stream leaves the export's ``started`` event under its request id, listed as incomplete."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.service.conftest import PHONE, World
from vault.audit import AuditQuery
from vault.export import writers


def refuse_audit(db_url: str, action: str) -> None:
    """Every insert of an ``action`` audit event fails (a trigger that raises)."""
    engine = create_engine(db_url)
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse_{action}_audit BEFORE INSERT ON audit_events "
                    f"WHEN NEW.action = '{action}' "
                    "BEGIN SELECT RAISE(ABORT, 'audit store down'); END"
                )
            )
        else:
            connection.execute(
                text(
                    f"CREATE FUNCTION refuse_{action}_audit() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.action = '{action}' THEN RAISE EXCEPTION 'audit store down'; "
                    "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse_{action}_audit BEFORE INSERT ON audit_events "
                    f"FOR EACH ROW EXECUTE FUNCTION refuse_{action}_audit()"
                )
            )
    engine.dispose()


@pytest.fixture
def audit_refuses_exports(db_url: str) -> None:
    refuse_audit(db_url, "export")


def test_an_export_whose_audit_event_cannot_be_written_sends_no_customer_data(
    world: World, audit_refuses_exports: None
) -> None:
    answer = world.http.post(
        "/v1/exports", json={"purpose": "customer_service"}, headers=world.headers("admin")
    )
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["type"] == "StoreError"
    assert "nothing was exported" in error["message"] and "\n" not in error["message"]
    for secret in (world.customer_id, PHONE, "zhang@example.cn", "张三"):
        assert secret not in answer.text
    assert world.admin.audit_query(AuditQuery(action="export")) == []


@pytest.fixture
def endless_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CSV export that never ends (its rows again and again), as a very large one would be
    while a client reads it."""
    original = writers.CsvWriter.write_rows

    def write_rows(self: writers.CsvWriter, rows: Iterable[Sequence[writers.Cell]]) -> None:
        batch = list(rows)
        while True:
            original(self, batch * 200)
            time.sleep(0.005)

    monkeypatch.setattr(writers.CsvWriter, "write_rows", write_rows)


def wait_for(condition: Any, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_client_that_cuts_the_stream_leaves_the_started_event_listed_as_incomplete(
    world: World, endless_csv: None
) -> None:
    with world.http.stream(
        "POST", "/v1/exports", json={"purpose": "customer_service"}, headers=world.headers("admin")
    ) as answer:
        assert answer.status_code == 200
        request_id = answer.headers["X-Request-Id"]
        received = next(answer.iter_bytes())
        assert world.customer_id.encode() in received or len(received) > 0
    # the client hung up after its first chunk
    events = [
        e
        for e in world.admin.audit_query(AuditQuery(action="export", limit=None))
        if e["request_id"] == request_id
    ]
    assert [e["details"]["phase"] for e in events][:1] == ["started"]
    assert events[0]["customers"]["ids"] == [world.customer_id]
    incomplete = wait_for(
        lambda: [
            e
            for e in world.admin.incomplete_exports()
            if e["request_id"] == request_id and e["ended"] is not None
        ]
    )
    (listed,) = incomplete
    assert listed["ended"] == "failed: ClientGone"
    assert listed["export_id"] == events[0]["details"]["export_id"]
    over_http = world.http.get("/v1/exports/incomplete", headers=world.headers("auditor"))
    assert over_http.status_code == 200, over_http.text
    assert [e["export_id"] for e in over_http.json()] == [listed["export_id"]]
    assert over_http.json()[0]["ended"] == "failed: ClientGone"
    refused = world.http.get("/v1/exports/incomplete", headers=world.headers("marketing"))
    assert refused.status_code == 403
    assert world.admin.audit_verify().ok


def test_a_whole_export_over_http_has_its_started_and_completed_events(world: World) -> None:
    answer = world.http.post(
        "/v1/exports", json={"purpose": "customer_service"}, headers=world.headers("admin")
    )
    assert answer.status_code == 200
    request_id = answer.headers["X-Request-Id"]
    manifest = world.http.get(
        f"/v1/exports/{request_id}/manifest", headers=world.headers("admin")
    ).json()
    started, completed = (
        e
        for e in world.admin.audit_query(AuditQuery(action="export"))
        if e["request_id"] == request_id
    )
    assert (started["details"]["phase"], completed["details"]["phase"]) == ("started", "completed")
    assert completed["details"]["manifest_sha256"] == manifest["manifest_sha256"]
    assert world.admin.incomplete_exports() == []


def test_a_read_whose_audit_event_cannot_be_written_is_503_with_no_customer_data(
    world: World, db_url: str
) -> None:
    refuse_audit(db_url, "read")
    answer = world.http.get(f"/v1/customers/{world.customer_id}", headers=world.headers("admin"))
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["type"] == "StoreError"
    for secret in (PHONE, "zhang@example.cn", "张三", "audit store down"):
        assert secret not in answer.text
