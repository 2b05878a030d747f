"""Every row of DESIGN's HTTP table that is not about signatures: routing,
methods, content types, size caps, timeouts, health, and the log lines."""

import json
import re
import socket
import time

from harness import Daemon, SLOW, payment_body


def test_routes_methods_and_content_types():
    with Daemon() as d:
        assert d.request("GET", "/nope").status == 404
        assert d.request("POST", "/webhooks/cashfree/").status == 404
        assert d.request("POST", "/webhooks/other", b"{}",
                         {"Content-Type": "application/json"}).status == 404
        for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
            r = d.request(m, "/webhooks/cashfree")
            assert r.status == 405, (m, r)
            assert r.headers.get("allow") == "POST"
        body = payment_body("8001")
        for ct in ("text/plain", "application/xml", "multipart/form-data; boundary=x",
                   "application/jsonx"):
            h = d.json_headers(body)
            h["Content-Type"] = ct
            assert d.post(body, h).status == 415, ct
        h = d.json_headers(body)
        del h["Content-Type"]
        assert d.post(body, h).status == 415
        # precedence: a wrong method beats a wrong content type, which beats size
        r = d.request("PUT", "/webhooks/cashfree", b"x" * 300000, {"Content-Type": "text/plain"})
        assert r.status == 405
        r = d.request("POST", "/webhooks/cashfree", b"x" * 300000, {"Content-Type": "text/plain"})
        assert r.status == 415
        r = d.request("POST", "/webhooks/cashfree", b"x" * 300000, {"Content-Type": "application/json"})
        assert r.status == 413
        h = d.json_headers(body)
        h["Content-Type"] = "Application/JSON; charset=UTF-8"
        assert d.post(body, h).status == 200
        assert d.rows("SELECT count(*) FROM events")[0][0] == 1
        d.wait_log(r"http: 405 PUT /webhooks/cashfree")


def test_body_cap_by_length_and_chunked():
    with Daemon(config={"max_body": "2048"}) as d:
        big = payment_body("8101")[:-1] + b',"pad":"' + b"p" * 3000 + b'"}'
        r = d.post_json(big)
        assert r.status == 413, r
        # exactly at the cap is fine
        base = payment_body("8102")
        fill = 2048 - len(base) - len(b',"p":""')
        exact = base[:-1] + b',"p":"' + b"q" * fill + b'"}'
        assert len(exact) == 2048
        assert d.post_json(exact).status == 200
        # chunked: no Content-Length, the cap applies while reading
        conn = d.connection()
        h = d.json_headers(big)
        conn.putrequest("POST", "/webhooks/cashfree")
        for k, v in h.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(big), 500):
            part = big[i:i + 500]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        assert r.status == 413, r.status
        conn.close()
        # a chunked body under the cap is accepted
        small = payment_body("8103")
        conn = d.connection()
        conn.request("POST", "/webhooks/cashfree", body=iter([small[:10], small[10:]]),
                     headers=d.json_headers(small), encode_chunked=True)
        assert conn.getresponse().status == 200
        conn.close()
        assert d.rows("SELECT count(*) FROM events")[0][0] == 2


def test_slow_clients_are_cut_off():
    with Daemon(config={"idle_timeout": "2", "request_timeout": "3"}) as d:
        # idle: connect and say nothing
        s = socket.create_connection(("127.0.0.1", d.port))
        t0 = time.monotonic()
        s.settimeout(15 * SLOW)
        assert s.recv(100) == b""
        idle = time.monotonic() - t0
        assert idle < 8 * SLOW, idle
        # trickled headers: one line a second never finishes a request
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"POST /webhooks/cashfree HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        closed = None
        s.settimeout(0.9)
        while time.monotonic() - t0 < 20 * SLOW:
            try:
                s.sendall(b"X-Slow: 1\r\n")
                if s.recv(100) == b"":
                    closed = time.monotonic() - t0
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = time.monotonic() - t0
                break
        assert closed is not None and closed < 10 * SLOW, closed
        d.wait_log("request_timeout")
        # the server still serves afterwards
        assert d.post_json(payment_body("8201")).status == 200


def test_healthz_and_database_lock_gives_503():
    with Daemon() as d:
        r = d.request("GET", "/healthz")
        assert r.status == 200 and r.json()["status"] == "ok"
        assert d.request("POST", "/healthz").status == 405
        import sqlite3
        con = sqlite3.connect(d.db_path, isolation_level=None, timeout=1)
        con.execute("BEGIN IMMEDIATE")
        try:
            r = d.post_json(payment_body("8301"))
            assert r.status == 503, r
            h = d.request("GET", "/healthz")
            assert h.status == 503 and "reason" in h.json(), h
        finally:
            con.execute("ROLLBACK")
            con.close()
        assert d.rows("SELECT count(*) FROM events")[0][0] == 0
        # Cashfree retries: now it is stored
        r = d.post_json(payment_body("8301"))
        assert r.status == 200, r
        assert d.rows("SELECT count(*) FROM events")[0][0] == 1
        deadline = time.monotonic() + 5 * SLOW
        while d.request("GET", "/healthz").status != 200:
            assert time.monotonic() < deadline, "healthz never recovered"
            time.sleep(0.1)
        d.wait_log(r"503 not stored event_key=PAYMENT_SUCCESS_WEBHOOK:8301")


def test_log_has_one_line_per_outcome_and_no_secret_or_body():
    with Daemon() as d:
        body = payment_body("8401", order_id="ord-log-1")
        assert d.post_json(body).status == 200
        assert d.post_json(body).status == 200
        assert d.post_json(body, secret="wrong-secret").status == 401
        d.wait_log(r"http: 200 new event_key=PAYMENT_SUCCESS_WEBHOOK:8401")
        d.wait_log(r"http: 200 duplicate event_key=PAYMENT_SUCCESS_WEBHOOK:8401")
        d.wait_log(r"http: 401 signature mismatch")
        log = d.log()
        assert "8401" in log and '"payment_status"' not in log
        for line in log.splitlines():
            assert line.startswith("<"), line
        d.stop()
        assert d.secrets[0] not in d.log()


def test_unix_socket_listener():
    with Daemon(listen="unix", config={"listen_mode": "0660"}) as d:
        import os
        import stat
        st = os.stat(d.unix_path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        assert d.post_json(payment_body("8501")).status == 200
        d.stop()
        assert not os.path.exists(d.unix_path)
        # a stale socket file from a crash is replaced on start
        d.start()
        assert d.post_json(payment_body("8502")).status == 200
        d.kill()
        assert os.path.exists(d.unix_path)
        d.start()
        assert d.post_json(payment_body("8503")).status == 200
        # a second daemon on a live socket refuses to start and leaves it alone
        from harness import Daemon as D2
        other = D2(listen="unix", start=False, config={"database": d.db_path + "2"})
        other.config["listen"] = "unix:" + d.unix_path
        other.write_config()
        other.start(wait=False)
        assert other.proc.wait(10 * SLOW) == 1
        other.proc = None
        other.close()
        assert d.post_json(payment_body("8504")).status == 200


def _raw(d, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", d.port))
    s.settimeout(timeout * SLOW)
    try:
        s.sendall(data)
    except OSError:
        pass            # refused early and closed: the answer may be in
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except ConnectionResetError:
        pass
    s.close()
    return out


def _send(d, method, path, body, headers, chunked):
    """One request in a single write (an early refusal may close the
    connection before a second write); returns the status."""
    head = "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in headers.items())
    if chunked:
        data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:100], body[100:]))
        data = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + data + b"0\r\n\r\n"
    else:
        data = (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
    out = _raw(d, data, timeout=20)
    assert out.startswith(b"HTTP/1.1 "), out[:100]
    return int(out[9:12])


def test_status_precedence_every_combination():
    """DESIGN: 404 > 405 > 415 > 413 > 401 > 503, for every combination of
    wrong path, method, content type, size (by Content-Length and chunked)
    and signature, with the database locked (so a valid request is 503)."""
    import itertools
    import sqlite3
    with Daemon(config={"max_body": "2048"}) as d:
        con = sqlite3.connect(d.db_path, isolation_level=None, timeout=1)
        con.execute("BEGIN IMMEDIATE")
        try:
            n = 0
            for path_ok, method_ok, ct_ok, size_ok, sig_ok, chunked in \
                    itertools.product((True, False), repeat=6):
                n += 1
                body = payment_body("86%04d" % n)
                if not size_ok:
                    body = body[:-1] + b',"pad":"' + b"p" * 3000 + b'"}'
                h = d.json_headers(body, secret=None if sig_ok else "wrong-secret")
                if not ct_ok:
                    h["Content-Type"] = "text/plain"
                path = "/webhooks/cashfree" if path_ok else "/webhooks/other"
                method = "POST" if method_ok else "PUT"
                want = 404 if not path_ok else 405 if not method_ok else \
                    415 if not ct_ok else 413 if not size_ok else \
                    401 if not sig_ok else 503
                got = _send(d, method, path, body, h, chunked)
                assert got == want, (path, method, ct_ok, size_ok, sig_ok, chunked, got, want)
        finally:
            con.execute("ROLLBACK")
            con.close()
        assert d.rows("SELECT count(*) FROM events")[0][0] == 0
        body = payment_body("869999")
        assert _send(d, "POST", "/webhooks/cashfree", body, d.json_headers(body), True) == 200


def _head(d, body, extra=""):
    h = d.json_headers(body)
    return ("POST /webhooks/cashfree HTTP/1.1\r\nHost: x\r\n" +
            "".join("%s: %s\r\n" % kv for kv in h.items()) + extra).encode()


def test_protocol_edges():
    with Daemon(config={"max_body": "2048"}) as d:
        body = payment_body("8701")
        # Expect: 100-continue with an oversize length: 413 at once, no
        # "100 Continue" (the body is never asked for), connection closed
        out = _raw(d, _head(d, body, "Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n"))
        assert out.startswith(b"HTTP/1.1 413"), out[:100]
        assert b"100 Continue" not in out
        # ... and with an acceptable length the body is asked for
        s = socket.create_connection(("127.0.0.1", d.port))
        s.settimeout(10 * SLOW)
        s.sendall(_head(d, body, "Content-Length: %d\r\nExpect: 100-continue\r\n"
                        "Connection: close\r\n\r\n" % len(body)))
        assert s.recv(100).startswith(b"HTTP/1.1 100"), "no 100 Continue"
        s.sendall(body)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        assert b"HTTP/1.1 200" in out, out[:200]
        # a malformed or overflowing Content-Length never reaches a handler
        for cl in ("abc", "-1", "0x10", "99999999999999999999999"):
            out = _raw(d, _head(d, body, "Content-Length: %s\r\n\r\n" % cl) + body)
            assert out.startswith(b"HTTP/1.1 400") or out.startswith(b"HTTP/1.1 413"), (cl, out[:80])
        # HTTP/1.0, and pipelined requests answered in order
        b2, b3 = payment_body("8702"), payment_body("8703")
        out = _raw(d, _head(d, b2, "Content-Length: %d\r\n\r\n" % len(b2)).replace(
            b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1) + b2)
        assert out.startswith(b"HTTP/1.") and b" 200 " in out.split(b"\r\n")[0], out[:100]
        out = _raw(d, _head(d, b3, "Content-Length: %d\r\n\r\n" % len(b3)) + b3 +
                   _head(d, b2, "Content-Length: %d\r\n\r\n" % len(b2)) + b2 +
                   b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 200") == 3, out
        assert out.index(b'"result":"new"') < out.index(b'"result":"duplicate"') < \
            out.index(b'"version"')
        # HEAD /healthz: the headers of the GET, no body
        out = _raw(d, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"\r\n\r\n"), out
        assert d.request("HEAD", "/metrics").status == 200
        keys = {r[0] for r in d.rows("SELECT event_key FROM events")}
        assert keys == {"PAYMENT_SUCCESS_WEBHOOK:8701", "PAYMENT_SUCCESS_WEBHOOK:8702",
                        "PAYMENT_SUCCESS_WEBHOOK:8703"}, keys


def test_endless_chunked_body_is_cut_at_request_timeout():
    """Past max_body a chunked body is read and dropped (its 413 follows the
    last chunk), so a client that never stops sending must be cut off by
    request_timeout, not held for ever; meanwhile the daemon serves."""
    with Daemon(config={"max_body": "2048", "idle_timeout": "2",
                        "request_timeout": "3"}) as d:
        body = payment_body("8801")
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(_head(d, body, "Transfer-Encoding: chunked\r\n\r\n"))
        s.settimeout(0.02)
        t0 = time.monotonic()
        sent, ended = 0, None
        while time.monotonic() - t0 < 20 * SLOW:
            try:
                s.sendall(b"1000\r\n" + b"a" * 4096 + b"\r\n")
                sent += 4096
            except OSError:
                ended = time.monotonic() - t0
                break
            try:
                if s.recv(4096) == b"":
                    ended = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            except OSError:
                ended = time.monotonic() - t0
                break
            if sent % (64 * 4096) == 0:
                assert d.request("GET", "/healthz").status == 200
        s.close()
        assert ended is not None, "an endless body was never cut off"
        assert 2.5 < ended < 6 * SLOW, ended
        assert sent > 2048 * 10
        d.wait_log("request_timeout")
        assert d.post_json(payment_body("8802")).status == 200


def test_peer_address_trusts_x_real_ip_only_on_unix_sockets():
    """Behind nginx (unix socket) the client is X-Real-IP; over TCP anyone
    could send that header, so the TCP peer is logged instead."""
    with Daemon() as d:
        body = payment_body("8901")
        assert d.post_json(body, extra={"X-Real-IP": "203.0.113.9"}).status == 200
        d.wait_log(r"event_key=PAYMENT_SUCCESS_WEBHOOK:8901 .*from 127\.0\.0\.1")
        assert "203.0.113.9" not in d.log()
    with Daemon(listen="unix") as d:
        body = payment_body("8902")
        assert d.post_json(body, extra={"X-Real-IP": "203.0.113.7"}).status == 200
        d.wait_log(r"event_key=PAYMENT_SUCCESS_WEBHOOK:8902 .*from 203\.0\.113\.7")
        assert d.request("GET", "/nope", headers={"X-Real-IP": "198.51.100.1\x1b[2J"}).status == 404
        d.wait_log(r"404 GET /nope from 198\.51\.100\.1\\x1b\[2J")
        assert d.post_json(payment_body("8903")).status == 200
        d.wait_log(r"event_key=PAYMENT_SUCCESS_WEBHOOK:8903 .*from unix")


def test_parked_request_outlives_idle_and_request_timeouts():
    """A request waiting for the writer (database locked for the 5 s busy
    timeout) is neither closed by libmicrohttpd's idle timeout nor reaped by
    request_timeout: it gets its 503."""
    import sqlite3
    with Daemon(config={"idle_timeout": "1", "request_timeout": "2"}) as d:
        con = sqlite3.connect(d.db_path, isolation_level=None, timeout=1)
        con.execute("BEGIN IMMEDIATE")
        try:
            t0 = time.monotonic()
            r = d.post_json(payment_body("9001"))
            took = time.monotonic() - t0
        finally:
            con.execute("ROLLBACK")
            con.close()
        assert r.status == 503, r
        assert took > 4, took
        assert "request_timeout" not in d.log()
        assert d.post_json(payment_body("9001")).status == 200


def test_garbage_on_the_socket_never_hurts_the_daemon():
    """Random bytes, truncated requests and absurd headers: the daemon answers
    or closes, never crashes or hangs, and still serves afterwards (the ASan
    build checks memory on the same paths)."""
    import random
    rng = random.Random(20261122)
    with Daemon(config={"idle_timeout": "2", "request_timeout": "3"}) as d:
        body = payment_body("8601")
        samples = [
            bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))) for _ in range(30)
        ] + [
            b"POST /webhooks/cashfree HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST /webhooks/cashfree HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\nzz\r\n",
            b"POST /webhooks/cashfree HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
            b"GET /" + b"%" * 5000 + b" HTTP/1.1\r\n\r\n",
            b"POST /webhooks/cashfree HTTP/1.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10\r\n\r\n{\"a\"",
            b"\r\n\r\n\r\n",
            b"POST /webhooks/cashfree HTTP/9.9\r\n\r\n",
        ]
        for raw in samples:
            s = socket.create_connection(("127.0.0.1", d.port))
            s.settimeout(10 * SLOW)
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
            except OSError:
                pass            # a reset is an answer too
            finally:
                s.close()
        assert d.request("GET", "/healthz").status == 200
        assert d.post_json(body).status == 200
        assert d.rows("SELECT count(*) FROM events")[0][0] == 1


def _answer(out):
    """(status, headers dict, body) of the single answer in `out`."""
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0][9:12]), hdrs, body


def test_framing_errors_are_400_or_501_and_close():
    """RFC 9112: conflicting Content-Length, Content-Length with
    Transfer-Encoding (request smuggling), chunked not last or repeated, and
    a blank before a field's colon are 400; a transfer coding other than
    chunked is 501 at once (never a wait for the idle timeout). Each closes
    the connection without reading what follows as a second request, and
    nothing is stored."""
    with Daemon(config={"idle_timeout": "30", "request_timeout": "60"}) as d:
        body = payment_body("8951")
        smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        cases = [
            ("Content-Length: %d\r\nContent-Length: %d\r\n" % (len(body), len(body) + 5),
             body + smuggled, 400, "conflicting Content-Length"),
            ("Content-Length: %d\r\nContent-Length: 0\r\n" % len(body),
             body, 400, "conflicting Content-Length"),
            ("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(chunked),
             chunked, 400, "Content-Length with Transfer-Encoding"),
            ("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
             chunked, 400, "Content-Length with Transfer-Encoding"),
            ("Transfer-Encoding: chunked, gzip\r\n",
             chunked, 400, "chunked is not the last transfer coding"),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
             chunked, 400, "chunked applied more than once"),
            ("Transfer-Encoding: gzip\r\n", body, 501, "transfer coding other than chunked"),
            ("Transfer-Encoding: gzip, chunked\r\n", chunked, 501,
             "transfer coding other than chunked"),
            ("Transfer-Encoding: chunked \r\n", chunked, 501,
             "Transfer-Encoding other than a plain chunked"),
        ]
        for extra, payload, want, why in cases:
            t0 = time.monotonic()
            out = _raw(d, _head(d, body, extra + "\r\n") + payload, timeout=20)
            took = time.monotonic() - t0
            status, hdrs, reply = _answer(out)
            assert status == want, (extra, out[:200])
            assert json.loads(reply) == {"error": why}, (extra, reply)
            assert hdrs.get("connection") == "close", (extra, out[:200])
            assert out.count(b"HTTP/1.1 ") == 1, (extra, out)      # nothing smuggled
            assert took < 5 * SLOW, (extra, took)                 # no idle-timeout wait
            d.wait_log(r"http: %d %s: POST /webhooks/cashfree from 127\.0\.0\.1" % (want, why))
        # a blank (or tab) before the colon is a 400, not a 415 for a
        # Content-Type that was never recognised (RFC 9112 5.1)
        for sep in (" :", "\t:"):
            h = d.json_headers(body)
            del h["Content-Type"]
            head = "POST /webhooks/cashfree HTTP/1.1\r\nHost: x\r\n" + \
                "".join("%s: %s\r\n" % kv for kv in h.items()) + \
                "Content-Type%s application/json\r\nContent-Length: %d\r\n\r\n" % (sep, len(body))
            status, hdrs, reply = _answer(_raw(d, head.encode() + body))
            assert status == 400 and json.loads(reply) == {"error": "malformed header field name"}
            assert hdrs.get("connection") == "close"
        # on any path, before the routing table (404, 405)
        out = _raw(d, b"PUT /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
        assert _answer(out)[0] == 501, out[:100]
        out = _raw(d, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                      b"Content-Length: 2\r\n\r\nab")
        assert _answer(out)[0] == 400, out[:100]
        assert d.rows("SELECT count(*) FROM events")[0][0] == 0
        # identical lengths are one length (RFC 9110 8.6), and the daemon serves on
        h = _head(d, body, "Content-Length: %d\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                  % (len(body), len(body)))
        assert _answer(_raw(d, h + body))[0] == 200
        m = d.request("GET", "/metrics").body.decode()
        assert re.search(r'^cfhookd_http_requests_total\{code="400"\} (\d+)$', m, re.M).group(1) \
            == str(sum(1 for c in cases if c[2] == 400) + 3)


def test_absolute_form_target_is_routed_by_its_path():
    """RFC 9112 3.2.2: a server accepts an absolute-form target; cfhookd
    routes it by its path (the authority is not ours to check). A target
    that is neither a path nor an http(s) URI is a 400."""
    with Daemon() as d:
        body = payment_body("8961")
        for target in ("http://x/webhooks/cashfree", "HTTP://127.0.0.1:%d/webhooks/cashfree" % d.port,
                       "https://cashfree.example/webhooks/cashfree?attempt=1"):
            head = _head(d, body, "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
            head = head.replace(b"POST /webhooks/cashfree ", ("POST %s " % target).encode(), 1)
            status, _, reply = _answer(_raw(d, head + body))
            assert status == 200, (target, reply)
        assert d.rows("SELECT count(*) FROM events")[0][0] == 1
        assert d.rows("SELECT deliveries FROM events")[0][0] == 3
        out = _raw(d, b"GET http://x/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _answer(out)[0] == 200 and b'"status":"ok"' in out
        out = _raw(d, b"GET http://x/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _answer(out)[0] == 404
        out = _raw(d, b"PUT http://x/webhooks/cashfree HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _answer(out)[0] == 405
        for target in (b"webhooks/cashfree", b"http://user@x/webhooks/cashfree", b"ftp://x/webhooks/cashfree"):
            out = _raw(d, b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, hdrs, reply = _answer(out)
            assert status == 400, (target, out[:100])
            assert json.loads(reply) == {"error": "request target is neither a path nor an http URI"}
        d.wait_log(r"http: 400 request target is neither a path nor an http URI: POST "
                   r"http://user@x/webhooks/cashfree from 127\.0\.0\.1")


def _ipv6_loopback_port():
    """A free port on [::1], or None when this host has no IPv6 loopback."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.bind(("::1", 0))
            return s.getsockname()[1]
        finally:
            s.close()
    except OSError:
        return None


def test_start_line_names_the_real_listen_address():
    """The start-up line names the address cfhookd really listens on, also
    for a socket systemd passes (read from the socket, not the config)."""
    with Daemon() as d:
        d.wait_log(r"cfhookd \S+: listening on 127\.0\.0\.1:%d, database" % d.port)
    with Daemon(listen="unix") as d:
        d.wait_log(r"listening on unix:%s, database" % re.escape(d.unix_path))
        assert ".tmp" not in re.search(r"listening on (\S+),", d.log()).group(1)
    port = _ipv6_loopback_port()
    if port is not None:
        with Daemon(config={"listen": "[::1]:%d" % port}) as d:
            d.wait_log(r"listening on \[::1\]:%d, database" % port)
    from test_systemd import Activated
    for kind in ("tcp", "unix"):
        with Activated(kind=kind, via="held") as d:
            d.start()
            want = "127.0.0.1:%d" % d.port if kind == "tcp" else "unix:" + d.unix_path
            d.wait_log(r"listening on %s, database" % re.escape(want))
            assert "systemd" not in re.search(r"listening on .*", d.log()).group(0)
            assert d.post_json(payment_body("8971" if kind == "tcp" else "8972")).status == 200


def test_heads_up_to_7_kib_pass_and_bigger_ones_get_431():
    """libmicrohttpd's pool per connection is 8 KiB: a head with the
    headers Cashfree and nginx send, and several KiB more, is served; one
    past about 7.5 KiB gets 431 (a clear refusal, never a hang), and the
    daemon serves on."""
    with Daemon() as d:
        body = payment_body("8981")
        proxy = {"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9, 10.0.0.1",
                 "X-Forwarded-Proto": "https", "User-Agent": "Cashfree-Webhook/1.0",
                 "x-idempotency-key": "n9rn7079wqXcse3GEDEXCYle9ajXmU0SUQY8zrUNAlc=",
                 "X-Big": "b" * 3000}
        for i in range(30):             # each field also costs ~50 bytes of the pool
            proxy["X-Trace-%02d" % i] = "t" * 20
        assert d.post_json(body, extra=proxy).status == 200
        h = _head(d, body, "X-Big: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                  % ("b" * 7000, len(body)))
        assert _raw(d, h + body).startswith(b"HTTP/1.1 200")
        h = _head(d, body, "X-Huge: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                  % ("h" * 9000, len(body)))
        out = _raw(d, h + body)
        assert out.startswith(b"HTTP/1.1 431"), out[:100]
        assert d.post_json(payment_body("8982")).status == 200
        assert d.rows("SELECT count(*) FROM events")[0][0] == 2
        assert d.rows("SELECT deliveries FROM events WHERE cf_payment_id = '8981'")[0][0] == 2


def test_keep_alive_serves_many_requests_on_one_connection():
    """A kept-alive connection serves request after request (the reaper
    starts each one's budgets afresh), also past header_timeout and
    request_timeout in total."""
    with Daemon(config={"header_timeout": "1", "request_timeout": "2",
                        "idle_timeout": "10"}) as d:
        conn = d.connection()
        t0 = time.monotonic()
        n = 7
        for i in range(1, n + 1):
            body = payment_body("899%02d" % i)
            conn.request("POST", "/webhooks/cashfree", body=body, headers=d.json_headers(body))
            r = conn.getresponse()
            assert r.status == 200 and r.getheader("Connection") is None, r.status
            r.read()
            time.sleep(0.5)
        conn.close()
        # one connection outlived both budgets together, however slow the
        # machine (a count of requests, not of seconds)
        assert time.monotonic() - t0 > 3.0
        assert d.rows("SELECT count(*) FROM events")[0][0] == n
        assert "header_timeout" not in d.log() and "request_timeout" not in d.log()
