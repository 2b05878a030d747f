"""The order ledger and payment fidelity, end to end (DESIGN "Orders",
"Events and deduplication", "Forwarding"): amounts byte-exact in the column,
the envelope, CFHOOK_AMOUNT and cfhookctl; the envelope and hook fields; the
ledger kept live and built on upgrade from the release before it; cfhookctl
orders / order and --tz."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from harness import SECRET, SLOW, Daemon, binary, load_vectors, sqlite_only

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
import make_v1_db as fx  # noqa: E402  (the fixture's own event list)

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                       "events-v1.db")


def wait_until(pred, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def recorder(d):
    """A hook that keeps each run's environment and stdin in out/ID.ATTEMPT."""
    out = os.path.join(d.tmp, "out")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(d.tmp, "hook.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nr=%s/$CFHOOK_EVENT_ID.$CFHOOK_ATTEMPT\nmkdir -p \"$r\"\n"
                "cat /proc/$$/environ > \"$r/env\"\ncat > \"$r/stdin\"\n" % out)
    os.chmod(path, 0o755)
    d.config["forward"] = "hook:" + path
    d.write_config()


def delivered(d, event_id):
    """(environment, envelope) of the event's first delivery."""
    r = os.path.join(d.tmp, "out", "%d.1" % event_id)
    with open(os.path.join(r, "env"), "rb") as f:
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0")[:-1])
    with open(os.path.join(r, "stdin"), "rb") as f:
        stdin = f.read()
    return {k.decode(): v.decode() for k, v in env.items()}, stdin


def all_done(d):
    wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state <> 'done'"
                              )[0][0] == 0, what="every event delivered")


def event_id(d, key):
    return d.rows("SELECT id FROM events WHERE event_key = ?", (key,))[0][0]


def ctl(d, *args, expect=0, env=None, db=None):
    cmd = [binary("cfhookctl"), "-d", db or d.db_path] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30 * SLOW, env=env)
    assert p.returncode == expect, (args, p.returncode, p.stderr)
    return p.stdout.decode()


def ctl_json(d, *args, **kw):
    return json.loads(ctl(d, "--json", *args, **kw))


def pay(type_, pid, order, amount, order_amount="2"):
    return fx.pay(type_, {"PAYMENT_SUCCESS_WEBHOOK": "SUCCESS",
                          "PAYMENT_FAILED_WEBHOOK": "FAILED",
                          "PAYMENT_USER_DROPPED_WEBHOOK": "USER_DROPPED"}[type_],
                  pid, order, amount, order_amount)


def link(link_id, tx, order, status="PAID", paid='"55.00"', tx_status="SUCCESS",
         order_amount='"55.00"'):
    return ('{"data":{"cf_link_id":1,"link_id":"%s","link_status":"%s","link_currency":"INR",'
            '"link_amount":"55.00","link_amount_paid":%s,"order":{"order_amount":%s,'
            '"order_id":"%s","transaction_id":%s,"transaction_status":"%s"}},'
            '"type":"PAYMENT_LINK_EVENT","version":1,"event_time":"2025-05-05T12:20:00+05:30"}'
            % (link_id, status, paid, order_amount, order, tx, tx_status))


def ok(d, body, extra=None):
    r = d.post_json(body, extra=extra)
    assert r.status == 200, r
    return r.json()["result"]


# -- amounts -----------------------------------------------------------------

AMOUNTS = [("170.00", "170.00"), ("2.50", "2.50"), ("0.10", "0.10"), ("1e2", "1e2"),
           ('"55.00"', "55.00")]


def test_amounts_byte_exact_everywhere():
    with Daemon(start=False) as d:
        recorder(d)
        d.start()
        for i, (token, _) in enumerate(AMOUNTS):
            assert ok(d, pay("PAYMENT_SUCCESS_WEBHOOK", "8100%d" % i, "amt-%d" % i,
                             token, token)) == "new"
        all_done(d)
        listed = {r["event_key"]: r for r in ctl_json(d, "list")}
        table = ctl(d, "list")
        for i, (token, want) in enumerate(AMOUNTS):
            key = "PAYMENT_SUCCESS_WEBHOOK:8100%d" % i
            eid = event_id(d, key)
            assert d.event(key)["amount"] == want, (token, d.event(key)["amount"])
            env, stdin = delivered(d, eid)
            assert env["CFHOOK_AMOUNT"] == want, (token, env["CFHOOK_AMOUNT"])
            e = json.loads(stdin)
            assert e["amount"] == want and e["order_amount"] == want, (token, e)
            # and the payload still carries the token as it was signed
            assert ('"payment_amount":%s' % token).encode() in stdin
            shown = ctl_json(d, "show", str(eid))
            assert shown["event"]["amount"] == want
            assert json.loads(shown["envelope"])["amount"] == want
            text = ctl(d, "show", str(eid))
            assert re.search(r"^  amount +%s$" % re.escape(want), text, re.M), text
            assert listed[key]["amount"] == want
            row = [ln for ln in table.splitlines() if key in ln]
            assert len(row) == 1 and (" %s " % want) in row[0], row
            # equal as decimals: no amount_mismatch for 1e2 against 1e2
            assert e["order_state"] == "PAID" and e["order_attention"] is None


# -- envelope and environment ------------------------------------------------

def test_envelope_and_environment_fields():
    vectors = {c["name"]: c for c in load_vectors()}
    with Daemon(start=False) as d:
        recorder(d)
        d.start()
        v = vectors["json_2025_success_with_idempotency_key"]
        assert d.post_vector(v).status == 200
        assert ok(d, link("fx_part", 1021206, "CFPay_part", status="PARTIALLY_PAID",
                          paid='"22.00"', order_amount='"22.00"')) == "new"
        assert ok(d, fx.REFUND) == "new"
        assert d.post_vector(vectors["json_settlement_webhook_no_idempotency_key"]).status \
            == 200
        assert ok(d, '{"type":"DISPUTE_CREATED","data":{"dispute":{"dispute_id":"433475258",'
                     '"dispute_status":"DISPUTE_CREATED","dispute_amount":3.50},'
                     '"order_details":{"order_id":"fx-paid"}}}') == "new"
        all_done(d)
        rows = d.rows("SELECT id, type FROM events ORDER BY id")
        ids = {r["type"]: r["id"] for r in rows}

        env, stdin = delivered(d, ids["PAYMENT_SUCCESS_WEBHOOK"])
        e = json.loads(stdin)
        assert e["idempotency_key"] == v["headers"]["x-idempotency-key"]
        assert e["webhook_version"] == "2025-01-01"
        assert e["order_state"] == "PAID" and e["order_paid_now"] is True
        assert env["CFHOOK_ORDER_STATE"] == "PAID" and env["CFHOOK_ORDER_PAID_NOW"] == "1"
        assert "link_status" not in e and "refund_id" not in e

        env, stdin = delivered(d, ids["PAYMENT_LINK_EVENT"])
        e = json.loads(stdin)
        assert (e["link_id"], e["link_status"], e["link_amount"], e["link_amount_paid"]) == \
            ("fx_part", "PARTIALLY_PAID", "55.00", "22.00")
        assert env["CFHOOK_LINK_STATUS"] == "PARTIALLY_PAID"
        assert env["CFHOOK_LINK_AMOUNT_PAID"] == "22.00"
        assert e["webhook_version"] == "2023-08-01" and e["idempotency_key"] is None
        # the link's order is paid by its transaction, whatever the link's own state
        assert e["order_state"] == "PAID" and env["CFHOOK_ORDER_PAID_NOW"] == "1"

        env, stdin = delivered(d, ids["REFUND_STATUS_WEBHOOK"])
        e = json.loads(stdin)
        assert (e["refund_id"], e["cf_refund_id"], e["refund_status"], e["refund_amount"],
                e["refund_currency"], e["refund_type"]) == \
            ("refund_fx_paid", "7770001", "SUCCESS", "170.00", "INR", "MERCHANT_INITIATED")
        # a refund is not part of the ledger
        assert e["order_state"] is None and e["order_paid_now"] is False
        assert env["CFHOOK_ORDER_STATE"] == "" and env["CFHOOK_ORDER_PAID_NOW"] == "0"
        assert env["CFHOOK_LINK_STATUS"] == "" and env["CFHOOK_ORDER_ATTENTION"] == ""

        e = json.loads(delivered(d, ids["SETTLEMENT_SUCCESS"])[1])
        assert (e["settlement_id"], e["settlement_status"], e["settlement_amount"],
                e["settlement_utr"]) == ("738", "SUCCESS", "97.94", "1645009380")
        e = json.loads(delivered(d, ids["DISPUTE_CREATED"])[1])
        assert (e["dispute_id"], e["dispute_status"], e["dispute_amount"]) == \
            ("433475258", "DISPUTE_CREATED", "3.50")


def test_live_envelopes_are_those_read_back_from_the_database():
    """The forwarder builds a new event's envelope from intake's own reading
    of the body; a retry, a restart or cfhookctl read the stored body again.
    Both must give the same bytes, for every family and for odd bodies."""
    bodies = [
        fx.REFUND,
        link("fx_live", 1021207, "CFPay_live", status="PARTIALLY_PAID",
             paid='"22.00"', order_amount='"22.00"'),
        pay("PAYMENT_SUCCESS_WEBHOOK", "1453002796", "o-live", "170.00"),
        pay("PAYMENT_FAILED_WEBHOOK", "1453002797", "o-live-2", "0.10"),
        '{"type":"DISPUTE_CREATED","data":{"dispute":{"dispute_id":"4334",'
        '"dispute_status":"DISPUTE_CREATED","dispute_amount":3.50},'
        '"order_details":{"order_id":"o-live"}}}',
        # beyond jansson's integers, a NUL escape, blanks between tokens
        '{ "type" : "PAYMENT_SUCCESS_WEBHOOK", "n" : "a\\u0000b", "data" : {"payment":'
        ' {"cf_payment_id": 123456789012345678901, "payment_status": "SUCCESS"},'
        ' "order": {"order_id": "o-big", "order_amount": 1e2}}}',
        '{"a":[1, 2.50]}',                    # no type
        '{"type":"X","a":1,"a":2}',           # duplicate keys: not an object
        '{"type":"SOMETHING_NEW","data":{"x":"\\u00e9t\\u00e9"}}',
    ]
    cases = load_vectors()
    secrets = [SECRET] + sorted({x for c in cases for x in c.get("secrets", [])} - {SECRET})
    with Daemon(start=False, secrets=secrets, config={"form_field_signature": "on"}) as d:
        recorder(d)
        d.start()
        for c in cases:                       # forms too: they are read again
            if c.get("expect_if_tolerance_disabled", c["expect"]) == "accept":
                assert d.post_vector(c).status == 200, c["name"]
        for b in bodies:
            assert ok(d, b) in ("new", "duplicate"), b
        all_done(d)
        rows = d.rows("SELECT id FROM events WHERE forward_attempts = 1 ORDER BY id")
        assert len(rows) >= len(bodies)
        for (eid,) in rows:
            live = delivered(d, eid)[1]
            assert live.endswith(b"\n") and live.count(b"\n") == 1
            shown = ctl_json(d, "show", str(eid))
            assert shown["envelope_attempt"] == 2
            again = shown["envelope"].encode()
            assert again.replace(b',"attempt":2,', b',"attempt":1,', 1) == live[:-1], eid


# -- the ledger, live --------------------------------------------------------

ATTENTION = "cfhookd_orders_attention_total{reason=\"%s\"} "


def attention_metric(d, reason):
    text = d.request("GET", "/metrics").body.decode()
    m = re.search(re.escape(ATTENTION % reason) + r"(\d+)", text)
    assert m, text
    return int(m.group(1))


def stamp(d, key):
    r = d.event(key)
    return (r["order_state"], r["order_paid_now"], r["order_attention"])


def order(d, order_id):
    r = d.rows("SELECT state, successes, order_amount, paid_amount, attention FROM orders "
               "WHERE order_id = ?", (order_id,))
    return tuple(r[0]) if r else None


def test_ledger_follows_events_live():
    with Daemon(start=False) as d:
        recorder(d)
        d.start()
        before = {r: attention_metric(d, r)
                  for r in ("double_payment", "amount_mismatch", "late_failure")}
        S, F, D = ("PAYMENT_SUCCESS_WEBHOOK", "PAYMENT_FAILED_WEBHOOK",
                   "PAYMENT_USER_DROPPED_WEBHOOK")
        steps = [
            # (body, key, stamp after it)
            (pay(F, "901", "A", "10.00", "10"), F + ":901", ("FAILED", 0, None)),
            (pay(S, "902", "A", "10.00", "10"), S + ":902", ("PAID", 1, None)),
            (pay(D, "903", "A", "10.00", "10"), D + ":903", ("PAID", 0, "late_failure")),
            (link("lb", 910, "CFPay_B"), "PAYMENT_LINK_EVENT:lb:PAID:910", ("PAID", 1, None)),
            (pay(S, "910", "CFPay_B", "55.00", "55.00"), S + ":910", ("PAID", 0, None)),
            (pay(S, "911", "CFPay_B", "55.00", "55.00"), S + ":911",
             ("PAID", 0, "double_payment")),
            (pay(S, "920", "C", "99.99", "100"), S + ":920", ("PAID", 1, "amount_mismatch")),
            (pay(S, "930", "D", "100", '"100.00"'), S + ":930", ("PAID", 1, None)),
        ]
        for body, key, want in steps:
            assert ok(d, body) == "new", key
            assert stamp(d, key) == want, (key, stamp(d, key))
        assert order(d, "A") == ("PAID", 1, "10", "10.00", "late_failure")
        assert order(d, "CFPay_B") == ("PAID", 2, "55.00", "55.00", "double_payment")
        assert order(d, "C") == ("PAID", 1, "100", "99.99", "amount_mismatch")
        assert order(d, "D") == ("PAID", 1, "100.00", "100", None)
        for r in before:
            assert attention_metric(d, r) == before[r] + 1, r
        d.wait_log(r"<4>ledger: order 'A' needs attention: late_failure \(event id=3 "
                   + re.escape(D + ":903"))
        d.wait_log(r"<4>ledger: order 'CFPay_B' needs attention: double_payment")

        # a duplicate delivery changes nothing: stamps, order, counters
        snapshot = d.rows("SELECT * FROM orders ORDER BY order_id")
        for body, key, want in steps:
            assert ok(d, body) == "duplicate", key
            assert stamp(d, key) == want
        assert d.rows("SELECT * FROM orders ORDER BY order_id") == snapshot
        for r in before:
            assert attention_metric(d, r) == before[r] + 1, r

        # what each delivery carried is what the event did, fixed when recorded
        all_done(d)
        for body, key, want in steps:
            env, stdin = delivered(d, event_id(d, key))
            e = json.loads(stdin)
            assert (e["order_state"], int(e["order_paid_now"]), e["order_attention"]) == \
                want, (key, e)
            assert env["CFHOOK_ORDER_STATE"] == want[0]
            assert env["CFHOOK_ORDER_PAID_NOW"] == str(want[1])
            assert env["CFHOOK_ORDER_ATTENTION"] == (want[2] or "")
        # and survives a restart: the ledger is in the database
        d.restart()
        assert order(d, "CFPay_B") == ("PAID", 2, "55.00", "55.00", "double_payment")
        assert ok(d, pay(S, "912", "CFPay_B", "55.00", "55.00")) == "new"
        assert order(d, "CFPay_B")[1] == 3


# -- upgrade -----------------------------------------------------------------

def fixture_daemon():
    """The current daemon on a copy of the schema-1 database (made by the
    release before the ledger: see fixtures/make_v1_db.py). In the
    PostgreSQL pass the copy is upgraded by a daemon on SQLite, then moved
    into the daemon's database with cfhookctl copy."""
    tmp = tempfile.mkdtemp(prefix="cfhookd-e2e-")
    path = os.path.join(tmp, "events.db")
    shutil.copyfile(FIXTURE, path)
    d = Daemon(tmp=tmp, start=False)
    if d.uses_pg():
        up = tempfile.mkdtemp(prefix="cfhookd-e2e-")
        try:
            with Daemon(tmp=up, config={"database": path}):
                pass
        finally:
            shutil.rmtree(up, ignore_errors=True)
        p = subprocess.run([binary("cfhookctl"), "-d", path, "copy", "--to", d.db_path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
        assert p.returncode == 0, p.stderr
    return d, tmp


def test_upgrade_from_the_release_before_the_ledger():
    sqlite_only("the fixture is an SQLite file of schema 1; PostgreSQL began at 3")
    d, tmp = fixture_daemon()
    try:
        with d:
            d.start()
            assert d.rows("PRAGMA user_version")[0][0] == 3
            d.wait_log(r"schema upgraded from version 1 to 3")
            d.wait_log(r"upgrade: 8 amount\(s\) read again as sent; 7 order\(s\) built "
                       r"from 11 payment and link event\(s\)")
            # every amount exactly as the body has it; the rest untouched
            for body, key, sent, _ in fx.EVENTS:
                if key is None:
                    continue
                row = d.event(key)
                assert row["amount"] == sent, (key, row["amount"])
                assert (row["body"] if isinstance(row["body"], str)
                        else row["body"].decode()) == body
            assert d.event(fx.EVENTS[0][1])["deliveries"] == 2
            assert order(d, "fx-paid") == ("PAID", 1, "170.00", "170.00", None)
            assert order(d, "fx-retry") == ("PAID", 1, "2.50", "2.50", None)
            assert order(d, "fx-late") == ("PAID", 1, "0.10", "0.10", "late_failure")
            assert order(d, "CFPay_fx_link_01") == ("PAID", 1, "55.00", "55.00", None)
            assert order(d, "fx-double") == ("PAID", 2, "100", "1e2", "double_payment")
            assert order(d, "fx-short") == ("PAID", 1, "100.00", "99.99", "amount_mismatch")
            assert order(d, "fx-drop") == ("USER_DROPPED", 0, "10.00", None, None)
            assert d.rows("SELECT count(*) FROM orders")[0][0] == 7
            # each event stamped as if it had arrived now, in id order
            assert stamp(d, "PAYMENT_FAILED_WEBHOOK:5550010") == ("FAILED", 0, None)
            assert stamp(d, "PAYMENT_SUCCESS_WEBHOOK:5550011") == ("PAID", 1, None)
            assert stamp(d, "PAYMENT_LINK_EVENT:fx_link_01:PAID:5550030") == ("PAID", 1, None)
            assert stamp(d, "PAYMENT_SUCCESS_WEBHOOK:5550030") == ("PAID", 0, None)
            assert stamp(d, "PAYMENT_FAILED_WEBHOOK:5550021") == ("PAID", 0, "late_failure")
            refund = d.rows("SELECT amount, order_state FROM events "
                            "WHERE type = 'REFUND_STATUS_WEBHOOK'")
            assert [tuple(r) for r in refund] == [(None, None)]
            # cfhookctl reads it, exact amounts included
            assert ctl_json(d, "show", "PAYMENT_SUCCESS_WEBHOOK:5550001")["event"]["amount"] \
                == "170.00"
            # the upgraded ledger goes on: a re-sent old event is a duplicate,
            # a new payment for a paid order is a second one
            assert ok(d, fx.EVENTS[2][0]) == "duplicate"
            assert ok(d, fx.success("5550012", "fx-retry", "2.50", "2.50")) == "new"
            assert order(d, "fx-retry") == ("PAID", 2, "2.50", "2.50", "double_payment")
            # the link's twin again: still one payment
            assert ok(d, fx.success("5550030", "CFPay_fx_link_01", "55.00", "55.00")) \
                == "duplicate"
            assert order(d, "CFPay_fx_link_01")[1] == 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_failed_upgrade_leaves_the_old_database_intact():
    sqlite_only("the fixture is an SQLite file of schema 1; PostgreSQL began at 3")
    d, tmp = fixture_daemon()
    try:
        db = os.path.join(tmp, "events.db")
        con = sqlite3.connect(db)
        # the C step's UPDATE of one amount fails half way through the rows
        con.execute("CREATE TRIGGER no_amounts BEFORE UPDATE OF amount ON events "
                    "WHEN NEW.id = 8 BEGIN SELECT RAISE(ABORT, 'refused by test'); END")
        con.commit()
        con.close()
        with d:
            d.start(wait=False)
            assert d.wait(20 * SLOW) == 1
            d.proc = None
            d.logf.close()
            assert "refused by test" in d.log(), d.log()
            con = sqlite3.connect(db)
            assert con.execute("PRAGMA user_version").fetchone()[0] == 1
            assert con.execute("SELECT amount FROM events WHERE id = 1").fetchone()[0] == "170"
            assert con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'orders'"
                               ).fetchone()[0] == 0
            con.execute("DROP TRIGGER no_amounts")
            con.commit()
            con.close()
            d.start()
            assert d.rows("PRAGMA user_version")[0][0] == 3
            assert d.event("PAYMENT_SUCCESS_WEBHOOK:5550040")["amount"] == "1e2"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- cfhookctl ---------------------------------------------------------------

def test_cfhookctl_orders_and_order():
    d, tmp = fixture_daemon()
    try:
        with d:
            recorder(d)
            d.start()
            assert ok(d, pay("PAYMENT_FAILED_WEBHOOK", "5550022", "fx-late", "0.10",
                             "0.10")) == "new"
            all_done(d)
            rows = ctl_json(d, "orders")
            assert len(rows) == 7 and rows[0]["order_id"] == "fx-late", rows
            byid = {r["order_id"]: r for r in rows}
            assert byid["fx-double"]["paid_amount"] == "1e2"
            assert byid["fx-double"]["successes"] == 2
            assert byid["fx-short"]["attention"] == "amount_mismatch"
            assert byid["fx-drop"]["paid_at"] is None
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                                byid["fx-paid"]["paid_at"])
            att = sorted(r["order_id"] for r in ctl_json(d, "orders", "--attention"))
            assert att == ["fx-double", "fx-late", "fx-short"]
            assert [r["order_id"] for r in ctl_json(d, "orders", "--state", "USER_DROPPED")] \
                == ["fx-drop"]
            assert len(ctl_json(d, "orders", "--limit", "2")) == 2
            assert ctl_json(d, "orders", "--since", "2999-01-01") == []
            assert len(ctl_json(d, "orders", "--since", "2020-01-01")) == 7
            text = ctl(d, "orders", "--attention")
            lines = text.splitlines()
            assert lines[0].split() == ["ORDER_ID", "STATE", "ORDER_AMOUNT", "PAID_AMOUNT",
                                        "CURRENCY", "SUCCESSES", "LAST_EVENT_AT", "ATTENTION"]
            assert any(ln.split()[:6] == ["fx-double", "PAID", "100", "1e2", "INR", "2"]
                       and ln.endswith("double_payment") for ln in lines), text
            assert ctl(d, "orders", "--state", "PENDING") == "no orders match\n"

            t = ctl_json(d, "order", "fx-late")
            assert t["order"]["state"] == "PAID" and t["order"]["attention"] == "late_failure"
            ev = t["events"]
            assert [e["cf_payment_id"] for e in ev] == ["5550020", "5550021", "5550022"]
            assert ev[0]["state_change"] == {"from": "PENDING", "to": "PAID",
                                            "new_order": True}
            assert ev[0]["order_paid_now"] is True
            assert ev[1]["state_change"] is None and ev[1]["attention_raised"] == "late_failure"
            assert ev[2]["attention_raised"] is None      # raised once
            # the new event was delivered; the upgraded ones were done long ago
            assert [x["ok"] for x in ev[2]["deliveries"]] == [True]
            assert ev[0]["deliveries"] == []
            text = ctl(d, "order", "fx-late")
            assert text.startswith("order fx-late\n")
            assert re.search(r"^  attention +late_failure$", text, re.M), text
            assert "state PENDING -> PAID, paid now (new order)" in text
            assert text.count("attention: late_failure") == 1
            assert "delivery attempt 1 ok" in text
            # the order's timeline keeps time order: the new event comes last
            what = [ln for ln in text.splitlines() if re.match(r"^\d{4}-", ln)]
            assert "5550022" in what[-2] and "delivery attempt 1 ok" in what[-1], what
            # a twin is one payment; the refund names an order the ledger also has
            t = ctl_json(d, "order", "CFPay_fx_link_01")
            assert [e["order_paid_now"] for e in t["events"]] == [True, False]
            t = ctl_json(d, "order", "fx-paid")
            assert t["events"][-1]["type"] == "REFUND_STATUS_WEBHOOK"
            assert t["events"][-1]["order_state"] is None
            ctl(d, "order", "no-such-order", expect=1)
            st = ctl_json(d, "status")
            assert (st["orders"], st["orders_attention"]) == (7, 3), st
            assert re.search(r"^  orders +7 \(3 need attention: cfhookctl orders "
                             r"--attention\)$", ctl(d, "status"), re.M)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_tz_shows_india_time_and_reads_dates_there():
    with Daemon() as d:
        assert ok(d, pay("PAYMENT_SUCCESS_WEBHOOK", "7001", "tz-1", "5", "5")) == "new"
        # the stored time, moved to a known instant: 2025-05-05T06:49:19.733Z
        d.execute("UPDATE events SET received_at = 1746427759733")
        d.execute("UPDATE orders SET first_event_at = 1746427759733, "
                  "paid_at = 1746427759733, last_event_at = 1746427759733")
        utc = ctl_json(d, "list")[0]["received_at"]
        assert utc == "2025-05-05T06:49:19.733Z"
        ist = ctl_json(d, "--tz", "Asia/Kolkata", "list")[0]["received_at"]
        assert ist == "2025-05-05T12:19:19.733+05:30"
        assert "2025-05-05T12:19:19+05:30" in ctl(d, "list", "--tz", "Asia/Kolkata")
        assert "2025-05-05T12:19:19+05:30" in ctl(d, "--tz", "+05:30", "order", "tz-1")
        env = dict(os.environ, TZ="Asia/Kolkata")
        assert ctl_json(d, "orders", env=env)[0]["paid_at"] == ist
        assert "2025-05-05T06:49:19Z" in ctl(d, "--tz", "UTC", "list", env=env)
        # a DATE without a zone is read in the display zone: India's
        # 2025-05-05 began at 2025-05-04T18:30Z, so 12:00 IST is after the
        # event and 12:00 UTC is not
        assert ctl_json(d, "--tz", "Asia/Kolkata", "list", "--since",
                        "2025-05-05T12:00:00") != []
        assert ctl_json(d, "--tz", "Asia/Kolkata", "list", "--since",
                        "2025-05-05T12:20:00") == []
        assert ctl_json(d, "list", "--since", "2025-05-05T12:00:00") == []
        assert ctl_json(d, "list", "--since", "2025-05-05T12:00:00+05:30") != []
        assert len(ctl_json(d, "--tz", "Asia/Kolkata", "orders", "--since",
                            "2025-05-05")) == 1
        st = ctl(d, "--tz", "Asia/Kolkata", "status")
        assert re.search(r"received today +\d+ \(Asia/Kolkata day, since "
                         r"\d{4}-\d\d-\d\dT00:00:00\+05:30\)", st), st
        ctl(d, "--tz", "Asia/Calcutta-typo", "status", expect=2)
        ctl(d, "status", expect=2, env=dict(os.environ, TZ="Nowhere/Town"))
