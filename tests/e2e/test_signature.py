"""Signature verdicts over real HTTP: every vector, rotation, tolerance, aliases,
split-point forgery, and the stored row of each accepted vector."""

import hashlib
import json

from harness import (Daemon, SECRET, encode_form, load_vectors, now_ms, payment_body,
                     sign_form, sign_json)


def expected(case):
    """The verdict with tolerance off (the default, spec section 11)."""
    return case.get("expect_if_tolerance_disabled", case["expect"])


def all_secrets():
    s = [SECRET]
    for c in load_vectors():
        for x in c.get("secrets", []):
            if x not in s:
                s.append(x)
    return s


def needs_field_scheme(case):
    return case.get("requires", {}).get("form_field_signature") == "on"


def test_every_vector_verdict_and_row():
    cases = load_vectors()
    # the vectors' verdicts assume what they require (the field scheme on)
    with Daemon(secrets=all_secrets(), config={"form_field_signature": "on"}) as d:
        for c in cases:
            r = d.post(c["body"].encode(), dict(c["headers"]))
            want = 200 if expected(c) == "accept" else 401
            assert r.status == want, "%s: got %d, want %d (%r)" % (c["name"], r.status, want, r.body)
        rows = {r["event_key"]: r for r in d.rows("SELECT * FROM events")}
        for c in cases:
            if expected(c) != "accept" or not c.get("dedup"):
                continue
            kind, value = c["dedup"]["kind"], c["dedup"]["value"]
            if kind == "sha256-body":
                key = "%s:sha256:%s" % (c["event"]["type"], value)
            else:
                key = value
            row = rows.get(key)
            assert row is not None, "%s: no row with key %s" % (c["name"], key)
            body = row["body"]
            if isinstance(body, bytes):
                body = body.decode()
            assert body == c["body"], c["name"] + ": stored body differs"
            assert row["type"] == c["event"]["type"], c["name"]
            want_id = c["event"].get("cf_payment_id") or c["event"].get("transaction_id")
            assert row["cf_payment_id"] == want_id, (c["name"], row["cf_payment_id"], want_id)
            assert row["order_id"] == c["event"].get("order_id"), c["name"]
        # refunds and settlements by their own ids, never the unsigned header
        assert "REFUND_STATUS_WEBHOOK:11325632:SUCCESS" in rows
        assert "SETTLEMENT_SUCCESS:738:SUCCESS" in rows
        assert not [k for k in rows if ":idem:" in k]
        # nothing rejected was stored: one row per accepted distinct event
        accepted = {c["name"] for c in cases if expected(c) == "accept"}
        dups = {c["name"] for c in cases if c.get("duplicate_of") in accepted}
        assert len(rows) == len(accepted) - len(dups), (len(rows), len(accepted), len(dups))
        log = d.log()
        assert "signature mismatch" in log and "signature missing" in log


def test_field_scheme_vectors_need_the_switch():
    """With form_field_signature off (the default) a form proved only by its
    signature field is 401, even the genuine vector."""
    cases = [c for c in load_vectors() if needs_field_scheme(c)]
    assert cases
    with Daemon(secrets=all_secrets()) as d:
        for c in cases:
            assert d.post(c["body"].encode(), dict(c["headers"])).status == 401, c["name"]
        assert d.rows("SELECT count(*) FROM events")[0][0] == 0
        assert "field_scheme_off" in d.log()


def test_rotation_needs_the_old_secret():
    case = next(c for c in load_vectors() if c["name"] == "json_signed_with_previous_secret_rotation")
    with Daemon(secrets=[SECRET]) as d:
        assert d.post(case["body"].encode(), dict(case["headers"])).status == 401
    with Daemon(secrets=case["secrets"]) as d:
        assert d.post(case["body"].encode(), dict(case["headers"])).status == 200
        assert "secret=#2" in d.log()


def test_tolerance_when_enabled():
    with Daemon(config={"tolerance": "300"}) as d:
        now = now_ms()
        ok = d.post_json(payment_body("5001"), ts=now - 2000)
        assert ok.status == 200, ok
        stale = d.post_json(payment_body("5002"), ts=now - 3600 * 1000)
        assert stale.status == 401, stale
        future = d.post_json(payment_body("5003"), ts=now + 3600 * 1000)
        assert future.status == 401, future
        seconds = d.post_json(payment_body("5004"), ts=now // 1000)
        assert seconds.status == 200, seconds
        assert "signature stale" in d.log()
        assert d.rows("SELECT count(*) FROM events")[0][0] == 2


def test_timestamp_grammar_and_split_point_forgery():
    with Daemon() as d:
        body = payment_body("6001")
        ts = str(now_ms())
        for bad in (ts + "0", ts[:-1], " " + ts, ts + " ", "+" + ts[1:], ts[:3] + "a" + ts[4:], "", "1e12"):
            h = d.json_headers(body, ts=bad)
            r = d.post(body, h)
            assert r.status == 401, (bad, r)
        # a genuine signature over ts(13) || body moved to ts(10) || "xyz" + body
        sig = sign_json(SECRET, ts, body)
        moved = ts[10:].encode() + body
        h = {"Content-Type": "application/json", "x-webhook-timestamp": ts[:10],
             "x-webhook-signature": sig}
        assert d.post(moved, h).status == 401
        # the same signature in its real place passes: the test above can fail
        h["x-webhook-timestamp"] = ts
        assert d.post(body, h).status == 200
        # leading whitespace before '{' is still an object
        ws = b" \r\n\t" + payment_body("6002")
        assert d.post_json(ws).status == 200
        assert d.rows("SELECT count(*) FROM events")[0][0] == 2


def test_signed_body_that_is_not_an_event_is_stored_unknown():
    with Daemon() as d:
        garbage = b'{"type": "PAYMENT_SUCCESS_WEBHOOK", oops'
        r = d.post_json(garbage)
        assert r.status == 200, r
        key = "UNKNOWN:sha256:" + hashlib.sha256(garbage).hexdigest()
        row = d.event(key)
        assert row is not None and row["type"] == "UNKNOWN"
        dupkeys = b'{"type":"A","type":"B"}'
        assert d.post_json(dupkeys).status == 200
        assert d.event("UNKNOWN:sha256:" + hashlib.sha256(dupkeys).hexdigest()) is not None
        trailing = b'{"type":"X"} {}'
        assert d.post_json(trailing).status == 200
        assert d.event("UNKNOWN:sha256:" + hashlib.sha256(trailing).hexdigest()) is not None
        # not starting with '{' is refused even when the signature is right
        for body in (b'[1]', b'"x"', b'123', b'', b'null'):
            assert d.post_json(body).status == 401, body


def test_header_aliases_and_hex_or_truncated_signatures():
    with Daemon() as d:
        body = payment_body("7001")
        ts = str(now_ms())
        sig = sign_json(SECRET, ts, body)
        h = {"Content-Type": "application/json; charset=utf-8",
             "X-Cashfree-Timestamp": ts, "X-Cashfree-Signature": sig}
        assert d.post(body, h).status == 200
        import hmac as _h
        hexsig = _h.new(SECRET.encode(), ts.encode() + body, hashlib.sha256).hexdigest()
        body2 = payment_body("7002")
        for bad in (hexsig, sig[:43], sig + "=", sig.lower(), sig.rstrip("=")):
            h = {"Content-Type": "application/json", "x-webhook-timestamp": ts,
                 "x-webhook-signature": bad}
            assert d.post(body2, h).status == 401, bad


def test_form_bodies():
    with Daemon(config={"form_field_signature": "on"}) as d:
        pairs = [("type", "PAYMENT_LINK_EVENT"), ("link_id", "lnk_1"), ("link_status", "PAID"),
                 ("transaction_id", "99001"), ("transaction_status", "SUCCESS"),
                 ("order_id", "CFPay_1"), ("order_amount", "10.00"), ("link_currency", "INR"),
                 ("customer_name", "A & B + C = D")]
        r = d.post_form(pairs, field=True)
        assert r.status == 200, r
        row = d.event("PAYMENT_LINK_EVENT:lnk_1:PAID:99001")
        assert row is not None and row["amount"] == "10.00" and row["currency"] == "INR"
        assert row["payment_status"] == "SUCCESS" and row["content_type"].startswith(
            "application/x-www-form-urlencoded")
        # a repeated key is refused even with a signature over the values
        body = encode_form(pairs + [("link_id", "lnk_2")])
        sig = sign_form(SECRET, pairs + [("link_id", "lnk_2")])
        r = d.post((body + "&signature=" + sig.replace("+", "%2B").replace("/", "%2F")
                    .replace("=", "%3D")).encode(),
                   {"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 401, r
        # a form signed with the header scheme passes too (spec section 11)
        raw = encode_form([("type", "PAYMENT_LINK_EVENT"), ("link_id", "lnk_3"),
                           ("link_status", "EXPIRED")]).encode()
        ts = str(now_ms())
        h = {"Content-Type": "application/x-www-form-urlencoded", "x-webhook-timestamp": ts,
             "x-webhook-signature": sign_json(SECRET, ts, raw)}
        assert d.post(raw, h).status == 200
        assert d.event("PAYMENT_LINK_EVENT:lnk_3:EXPIRED:") is not None
        # a raw '+' in the signature decodes to a space and fails
        good = [("type", "X_EVENT"), ("a", "1")]
        sig = sign_form(SECRET, good)
        if "+" in sig:
            r = d.post((encode_form(good) + "&signature=" + sig).encode(),
                       {"Content-Type": "application/x-www-form-urlencoded"})
            assert r.status == 401
        assert d.rows("SELECT count(*) FROM events")[0][0] == 2


def test_trailing_blanks_in_signature_headers_are_not_part_of_them():
    """RFC 9110 section 5.5: optional whitespace around a field value is not
    part of it (nginx strips it; cfhookd must too when reached directly)."""
    import socket
    with Daemon() as d:
        body = payment_body("7101")
        ts = str(now_ms())
        sig = sign_json(SECRET, ts, body)
        req = (b"POST /webhooks/cashfree HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n"
               b"x-webhook-timestamp: %s \t\r\nx-webhook-signature: %s  \r\n"
               b"Connection: close\r\n\r\n" % (len(body), ts.encode(), sig.encode())) + body
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(req)
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:7101") is not None
