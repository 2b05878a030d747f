"""Deduplication and durability: one row per event, duplicates counted,
concurrent copies, restarts, crashes."""

import concurrent.futures
import json
import signal
import time

from harness import Daemon, payment_body


def test_duplicate_counted_not_reinserted():
    with Daemon() as d:
        body = payment_body("9001")
        for attempt in (1, 2, 3):
            r = d.post_json(body, extra={"x-webhook-attempt": str(attempt)})
            assert r.status == 200, r
            assert r.json()["result"] == ("new" if attempt == 1 else "duplicate")
        rows = d.rows("SELECT id, deliveries, received_at, last_seen_at FROM events")
        assert len(rows) == 1
        assert rows[0]["deliveries"] == 3
        assert rows[0]["last_seen_at"] >= rows[0]["received_at"]


def test_failed_then_success_are_two_events():
    with Daemon() as d:
        failed = payment_body("9101", type_="PAYMENT_FAILED_WEBHOOK", status="FAILED")
        success = payment_body("9101", type_="PAYMENT_SUCCESS_WEBHOOK", status="SUCCESS")
        assert d.post_json(failed).status == 200
        assert d.post_json(success).status == 200
        keys = sorted(r[0] for r in d.rows("SELECT event_key FROM events"))
        assert keys == ["PAYMENT_FAILED_WEBHOOK:9101", "PAYMENT_SUCCESS_WEBHOOK:9101"]


def test_numeric_ids_beyond_2_53_keep_their_digits():
    with Daemon() as d:
        big = "9007199254740993"        # 2^53 + 1: a double would print ...992
        assert d.post_json(payment_body(big, numeric_id=True)).status == 200
        row = d.event("PAYMENT_SUCCESS_WEBHOOK:" + big)
        assert row is not None and row["cf_payment_id"] == big
        assert d.post_json(payment_body("9102", amount="170.00")).status == 200
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:9102")["amount"] == "170.00"
        assert d.post_json(payment_body("9103", amount='"170.00"')).status == 200
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:9103")["amount"] == "170.00"
        assert d.post_json(payment_body("9104", amount="1.8")).status == 200
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:9104")["amount"] == "1.8"


def test_many_concurrent_copies_give_one_row():
    with Daemon() as d:
        body = payment_body("9201", order_id="ord-concurrent")
        distinct = [payment_body(str(9300 + i)) for i in range(20)]

        def send(b):
            return d.post_json(b).status

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
            statuses = list(ex.map(send, [body] * 60 + distinct * 2))
        assert statuses.count(200) == len(statuses), statuses
        rows = d.rows("SELECT event_key, deliveries FROM events")
        assert len(rows) == 21, len(rows)
        by_key = {r[0]: r[1] for r in rows}
        assert by_key["PAYMENT_SUCCESS_WEBHOOK:9201"] == 60
        assert all(by_key["PAYMENT_SUCCESS_WEBHOOK:%d" % (9300 + i)] == 2 for i in range(20))
        new = sum(1 for l in d.log().splitlines() if "http: 200 new event_key=PAYMENT_SUCCESS_WEBHOOK:9201" in l)
        assert new == 1, new


def test_dedupe_survives_restart_and_crash():
    with Daemon() as d:
        body = payment_body("9401")
        assert d.post_json(body).json()["result"] == "new"
        d.restart()
        assert d.post_json(body).json()["result"] == "duplicate"
        # every acknowledged event survives SIGKILL (durability = full)
        acked = []
        for i in range(30):
            b = payment_body(str(9500 + i))
            if d.post_json(b).status == 200:
                acked.append("PAYMENT_SUCCESS_WEBHOOK:%d" % (9500 + i))
        d.kill()
        d.start()
        keys = {r[0] for r in d.rows("SELECT event_key FROM events")}
        assert set(acked) <= keys
        assert d.post_json(body).json()["result"] == "duplicate"
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:9401")["deliveries"] == 3


def test_sigterm_finishes_in_flight_requests_and_exits_0():
    with Daemon() as d:
        import threading
        results = []
        conn = d.connection()
        body = payment_body("9601")
        h = d.json_headers(body)
        conn.putrequest("POST", "/webhooks/cashfree")
        for k, v in h.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[:20])            # a request in flight when SIGTERM comes
        time.sleep(0.3)
        d.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        conn.send(body[20:])
        r = conn.getresponse()
        results.append(r.status)
        assert results == [200], results
        rc = d.stop()
        assert rc == 0
        assert "stopping" in d.log()
        assert d.rows("SELECT count(*) FROM events WHERE event_key = ?",
                      ("PAYMENT_SUCCESS_WEBHOOK:9601",))[0][0] == 1


def test_forward_state_starts_done_without_forward():
    with Daemon() as d:
        assert d.post_json(payment_body("9701")).status == 200
        row = d.event("PAYMENT_SUCCESS_WEBHOOK:9701")
        assert row["forward_state"] == "done"
        assert row["received_at"] > 1600000000000     # unix ms
        assert d.schema_version() >= 1
        if not d.uses_pg():
            assert d.rows("PRAGMA journal_mode")[0][0] == "wal"
