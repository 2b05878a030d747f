"""Hostile replay (spec section 11): an attacker holds ONE genuine signed
request (from a log, a proxy, a mis-routed copy) and replays it every way
there is: other Content-Types, other or missing unsigned headers, moved
split points, re-cut form values (with the field scheme on and off), added
and removed blank fields, pipelined and chunked. Each replay must give 401
or "duplicate": never a new row, never a second forward."""

import base64
import hashlib
import json
import os
import socket
import time
import urllib.parse

from harness import SECRET, SLOW, Daemon, now_ms, sign_form, sign_json

FORM_CT = "application/x-www-form-urlencoded"

# A genuine payment whose customer's name is a form: read as a form, the
# body would say "SUCCESS of 100000.00 for order victim" (hole 1).
FORGERY = ("x&type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=999&order_id=victim&"
           "payment_status=SUCCESS&payment_amount=100000.00")


def genuine_payment(cf_id, order_id):
    return ('{"data":{"order":{"order_id":"%s","order_amount":170.00,"order_currency":"INR"},'
            '"payment":{"cf_payment_id":"%s","payment_status":"SUCCESS","payment_amount":170.00,'
            '"payment_currency":"INR"},"customer_details":{"customer_name":"%s"}},'
            '"event_time":"2025-05-05T12:19:19+05:30","type":"PAYMENT_SUCCESS_WEBHOOK"}'
            % (order_id, cf_id, FORGERY)).encode()


def headers_for(body, ts=None, ct="application/json", extra=None):
    ts = str(now_ms()) if ts is None else ts
    h = {"Content-Type": ct, "x-webhook-timestamp": ts,
         "x-webhook-signature": sign_json(SECRET, ts, body),
         "x-webhook-version": "2025-01-01", "x-webhook-attempt": "1",
         "x-idempotency-key": base64_sha(body)}
    h.update(extra or {})
    return h


def base64_sha(body):
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def counting_hook(d):
    """forward = hook:... recording one line per delivery."""
    path = os.path.join(d.tmp, "count.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho \"$CFHOOK_EVENT_KEY\" >> %s/deliveries\ncat >/dev/null\n"
                % d.tmp)
    os.chmod(path, 0o755)
    return "hook:" + path


def deliveries(d):
    try:
        with open(os.path.join(d.tmp, "deliveries")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def settle(d):
    """Waits until nothing is pending, then a moment more: a second forward
    would show up in the deliveries file."""
    deadline = time.monotonic() + 15 * SLOW
    while d.rows("SELECT count(*) FROM events WHERE forward_state = 'pending'")[0][0]:
        assert time.monotonic() < deadline, "events still pending"
        time.sleep(0.05)
    time.sleep(1.5)


def result(r):
    """'new', 'duplicate' or the status code."""
    if r.status == 200:
        return json.loads(r.body)["result"]
    return r.status


def raw_exchange(d, data, n):
    """Writes data (one or more requests) on one connection and returns the
    status codes of the first n responses (fewer if the server closes)."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW)
    try:
        s.sendall(data)
        buf = b""
        codes = []
        while len(codes) < n:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                continue
            head = buf[:head_end].decode("latin-1")
            lines = head.split("\r\n")
            codes.append(int(lines[0].split()[1]))
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            while len(buf) < head_end + 4 + length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            buf = buf[head_end + 4 + length:]
        return codes
    finally:
        s.close()


def raw_request(body, headers, chunked=False, path="/webhooks/cashfree"):
    lines = ["POST %s HTTP/1.1" % path, "Host: cashfree.test"]
    lines += ["%s: %s" % kv for kv in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        mid = len(body) // 2
        payload = b""
        for part in (body[:mid], body[mid:]):
            payload += b"%x\r\n" % len(part) + part + b"\r\n"
        payload += b"0\r\n\r\n"
    else:
        lines.append("Content-Length: %d" % len(body))
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def test_json_webhook_replayed_every_way():
    with Daemon(start=False) as d:
        d.config["forward"] = counting_hook(d)
        d.write_config()
        d.start()
        body = genuine_payment("1453002900", "order_genuine")
        ts = str(now_ms())
        h = headers_for(body, ts)
        assert result(d.post(body, h)) == "new"
        replays = [
            # other Content-Types: the signed bytes are JSON (hole 1)
            ({"Content-Type": FORM_CT}, 401),
            ({"Content-Type": FORM_CT + "; charset=utf-8"}, 401),
            ({"Content-Type": "Application/X-WWW-Form-URLEncoded"}, 401),
            ({"Content-Type": "text/plain"}, 415),
            ({"Content-Type": "application/json; charset=utf-8"}, "duplicate"),
            # other or missing unsigned headers (hole 2)
            ({"x-idempotency-key": "attacker-chosen"}, "duplicate"),
            ({"x-idempotency-key": None}, "duplicate"),
            ({"x-webhook-version": "2023-08-01"}, "duplicate"),
            ({"x-webhook-version": None}, "duplicate"),
            ({"x-webhook-attempt": "7"}, "duplicate"),
            ({"X-Real-IP": "203.0.113.7"}, "duplicate"),
        ]
        for change, want in replays:
            hh = dict(h)
            for k, v in change.items():
                hh.pop(k, None)
                if v is not None:
                    hh[k] = v
            assert result(d.post(body, hh)) == want, change
        # the aliases carry the same proof: still one event
        hh = {"Content-Type": "application/json", "X-Cashfree-Timestamp": ts,
              "X-Cashfree-Signature": h["x-webhook-signature"]}
        assert result(d.post(body, hh)) == "duplicate"
        # moved split points: a digit of the timestamp into the body, or the
        # other way; a blank before or after the body
        assert d.post(ts[-1:].encode() + body, dict(h, **{"x-webhook-timestamp": ts[:-1]})).status == 401
        assert d.post(ts[-3:].encode() + body, dict(h, **{"x-webhook-timestamp": ts[:-3]})).status == 401
        assert d.post(b" " + body, h).status == 401
        assert d.post(body + b"\n", h).status == 401
        # pipelined on one connection, and chunked
        json_h = {k: v for k, v in h.items()}
        form_h = dict(h, **{"Content-Type": FORM_CT})
        data = (raw_request(body, json_h) + raw_request(body, form_h) +
                raw_request(body, json_h, chunked=True) + raw_request(body, form_h, chunked=True))
        assert raw_exchange(d, data, 4) == [200, 401, 200, 401]
        settle(d)
        rows = d.rows("SELECT event_key, order_id, cf_payment_id, deliveries FROM events")
        assert len(rows) == 1, [tuple(r) for r in rows]
        assert rows[0]["event_key"] == "PAYMENT_SUCCESS_WEBHOOK:1453002900"
        assert rows[0]["order_id"] == "order_genuine"
        # the genuine one, 7 header variants, the alias, 2 pipelined
        assert rows[0]["deliveries"] == 1 + 7 + 1 + 2
        assert d.rows("SELECT count(*) FROM events WHERE order_id = 'victim' OR "
                      "cf_payment_id = '999'")[0][0] == 0
        assert deliveries(d) == ["PAYMENT_SUCCESS_WEBHOOK:1453002900"]
        assert "format_mismatch" in d.log()
        # the later genuine SUCCESS of payment 999 is new, not a "duplicate"
        victim = genuine_payment("999", "victim")
        assert result(d.post(victim, headers_for(victim))) == "new"


def test_refund_replayed_with_other_headers():
    """Hole 2: one refund, replayed with other or no x-idempotency-key, and
    sent once per webhook version (other bytes, same ids): one event."""
    v2023 = (b'{"data":{"refund":{"cf_refund_id":11325640,"cf_payment_id":789727431,'
             b'"refund_id":"refund_r1","order_id":"ord_r1","refund_amount":2.00,'
             b'"refund_status":"SUCCESS"}},"event_time":"2025-05-05T12:19:19+05:30",'
             b'"type":"REFUND_STATUS_WEBHOOK"}')
    v2025 = (b'{"data":{"refund":{"cf_refund_id":"11325640","cf_payment_id":789727431,'
             b'"refund_id":"refund_r1","order_id":"ord_r1","refund_amount":2.00,'
             b'"refund_currency":"INR","refund_status":"SUCCESS","refund_type":"MERCHANT_INITIATED"}},'
             b'"event_time":"2025-05-05T12:19:19+05:30","type":"REFUND_STATUS_WEBHOOK"}')
    with Daemon(start=False) as d:
        d.config["forward"] = counting_hook(d)
        d.write_config()
        d.start()
        h = headers_for(v2023, extra={"x-idempotency-key": "genuine-key"})
        assert result(d.post(v2023, h)) == "new"
        for key in ("other-key", "", "x" * 500, None):
            hh = dict(h)
            hh.pop("x-idempotency-key")
            if key is not None:
                hh["x-idempotency-key"] = key
            assert result(d.post(v2023, hh)) == "duplicate", key
        assert result(d.post(v2025, headers_for(v2025))) == "duplicate"
        settle(d)
        rows = d.rows("SELECT event_key, idempotency_key, deliveries FROM events")
        assert [tuple(r) for r in rows] == [("REFUND_STATUS_WEBHOOK:11325640:SUCCESS",
                                             "genuine-key", 6)]
        assert deliveries(d) == ["REFUND_STATUS_WEBHOOK:11325640:SUCCESS"]


# A genuine part payment of a Payment Link, signed by its signature field
# (spec 5.2). Keys sorted: link_purpose sits next to link_status, order_id
# next to transaction_id, so bytes can move between them.
LINK_FIELDS = [("cf_link_id", "1576977"), ("customer_name", "Test Buyer"),
               ("customer_phone", "9000000000"),
               ("event_time", "2021-08-18T12:55:06+05:30"), ("link_amount", "200.00"),
               ("link_amount_paid", "55.00"), ("link_currency", "INR"),
               ("link_id", "link_ps11"), ("link_purpose", "Payment for order 11"),
               ("link_status", "PARTIALLY_PAID"), ("order_amount", "200.00"),
               ("order_id", "CFPay_ps11_ab7"), ("transaction_id", "1021206"),
               ("transaction_status", "SUCCESS"), ("type", "PAYMENT_LINK_EVENT"),
               ("upi", ""), ("version", "1")]
LINK_KEY = "PAYMENT_LINK_EVENT:link_ps11:PARTIALLY_PAID:1021206"


def form_body(pairs, sig):
    return (urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote_plus) +
            "&signature=" + urllib.parse.quote(sig, safe="")).encode()


def with_value(pairs, **changes):
    return [(k, changes.get(k, v)) for k, v in pairs]


def recuts():
    """(what, body) of forms re-cut from the genuine one: each carries the
    genuine signature, and each signing string equals the genuine one."""
    sig = sign_form(SECRET, LINK_FIELDS)
    p = LINK_FIELDS
    out = [
        ("PARTIALLY_ moved into link_purpose",
         form_body(with_value(p, link_purpose="Payment for order 11PARTIALLY_",
                              link_status="PAID"), sig)),
        ("a digit moved from transaction_id to order_id",
         form_body(with_value(p, order_id="CFPay_ps11_ab71", transaction_id="021206"), sig)),
        ("a digit moved from order_id to transaction_id",
         form_body(with_value(p, order_id="CFPay_ps11_ab", transaction_id="71021206"), sig)),
        ("a blank field added", form_body(p + [("zz", "")], sig)),
        ("a blank field named like a neighbour",
         form_body(p + [("transaction_idx", "")], sig)),
        ("the blank field removed", form_body([kv for kv in p if kv[0] != "upi"], sig)),
        ("the fields reordered", form_body(list(reversed(p)), sig)),
        ("a blank field renamed in place",
         form_body([("upi2", v) if k == "upi" else (k, v) for k, v in p], sig)),
        ("percent-encoded letters",
         form_body(p, sig).replace(b"Test+Buyer", b"%54est%20Buyer")),
    ]
    # every re-cut really has the genuine signing string
    for what, b in out:
        pairs = urllib.parse.parse_qsl(b.decode(), keep_blank_values=True)
        assert sign_form(SECRET, pairs) == sig, what
    return out


def test_form_recuts_field_scheme_on():
    sig = sign_form(SECRET, LINK_FIELDS)
    with Daemon(start=False, config={"form_field_signature": "on"}) as d:
        d.config["forward"] = counting_hook(d)
        d.write_config()
        d.start()
        assert "form_field_signature = on" in d.log()   # the start-up warning
        assert result(d.post(form_body(LINK_FIELDS, sig), {"Content-Type": FORM_CT})) == "new"
        for what, b in recuts():
            r = d.post(b, {"Content-Type": FORM_CT})
            assert r.status == 401 or result(r) == "duplicate", (what, r)
        settle(d)
        rows = d.rows("SELECT event_key, payment_status, order_id FROM events")
        assert [tuple(r) for r in rows] == [(LINK_KEY, "SUCCESS", "CFPay_ps11_ab7")]
        assert deliveries(d) == [LINK_KEY]
        log = d.log()
        assert "form_fields" in log


def test_form_recuts_field_scheme_off():
    """The default: a form proved only by its field is refused, genuine or
    re-cut."""
    sig = sign_form(SECRET, LINK_FIELDS)
    with Daemon() as d:
        assert d.post(form_body(LINK_FIELDS, sig), {"Content-Type": FORM_CT}).status == 401
        for what, b in recuts():
            assert d.post(b, {"Content-Type": FORM_CT}).status == 401, what
        assert d.rows("SELECT count(*) FROM events")[0][0] == 0
        assert "field_scheme_off" in d.log()


def test_recut_arriving_first_cannot_pay_in_full():
    """A re-cut that reaches cfhookd before the genuine form must still not
    turn a part payment into a full one: its status disagrees with its
    amounts (401); the genuine form is then new."""
    sig = sign_form(SECRET, LINK_FIELDS)
    with Daemon(config={"form_field_signature": "on"}) as d:
        first = recuts()[0][1]
        assert d.post(first, {"Content-Type": FORM_CT}).status == 401
        second = recuts()[1][1]
        assert d.post(second, {"Content-Type": FORM_CT}).status == 401
        assert result(d.post(form_body(LINK_FIELDS, sig), {"Content-Type": FORM_CT})) == "new"
        assert d.rows("SELECT event_key FROM events")[0][0] == LINK_KEY


def test_header_signed_form_replays():
    """A form signed with the headers: its raw bytes are fixed, so any
    re-cut is a mismatch, and moving a timestamp digit into it is refused."""
    pairs = [kv for kv in LINK_FIELDS if kv[0] != "upi"]
    raw = urllib.parse.urlencode(pairs).encode()
    with Daemon() as d:
        ts = str(now_ms())
        h = headers_for(raw, ts, ct=FORM_CT)
        assert result(d.post(raw, h)) == "new"
        assert result(d.post(raw, h)) == "duplicate"
        recut = urllib.parse.urlencode(with_value(
            pairs, link_purpose="Payment for order 11PARTIALLY_", link_status="PAID")).encode()
        assert d.post(recut, h).status == 401
        assert d.post(urllib.parse.urlencode(list(reversed(pairs))).encode(), h).status == 401
        assert d.post(raw + b"&zz=", h).status == 401
        assert d.post(ts[-1:].encode() + raw, dict(h, **{"x-webhook-timestamp": ts[:-1]})).status == 401
        # the same bytes as JSON are not JSON: 401
        assert d.post(raw, dict(h, **{"Content-Type": "application/json"})).status == 401
        assert d.rows("SELECT count(*) FROM events")[0][0] == 1


def test_content_type_confusion_through_nginx():
    from test_nginx import Nginx
    with Daemon(listen="unix") as d:
        with Nginx(d.unix_path) as ng:
            body = genuine_payment("1453002901", "order_nginx")
            h = headers_for(body)
            st, _, _ = ng.request("POST", "/webhooks/cashfree", body, h)
            assert st == 200
            st, _, resp = ng.request("POST", "/webhooks/cashfree", body,
                                     dict(h, **{"Content-Type": FORM_CT}))
            assert st == 401, resp
            assert b"content type does not match the signed body" in resp
        assert d.rows("SELECT count(*) FROM events")[0][0] == 1
