"""Every row of DESIGN's HTTP table that is not about signatures: routing,
methods, content types, size caps, timeouts, health, and the log lines."""

import json
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
