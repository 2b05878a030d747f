"""GET /metrics: Prometheus text, every series cfhookd_*, counters match the
requests this test sent; the forward attempt counters move with each
attempt and agree with forward_log; the oldest-pending and last-event gauges
follow the outbox and intake."""

import os
import re
import socket
import threading
import time

from harness import Daemon, SLOW, payment_body

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+Inf]+)$')


def scrape(d):
    r = d.request("GET", "/metrics")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain")
    series = {}
    for line in r.body.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        m = LINE.match(line)
        assert m, "not exposition format: %r" % line
        assert m.group(1).startswith("cfhookd_"), line
        series[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return series


def test_counters_follow_requests():
    with Daemon() as d:
        before = scrape(d)
        for i in range(3):
            assert d.post_json(payment_body(str(10000 + i))).status == 200
        assert d.post_json(payment_body("10000")).status == 200          # duplicate
        assert d.post_json(payment_body("10100", type_="PAYMENT_FAILED_WEBHOOK",
                                        status="FAILED")).status == 200
        assert d.post_json(payment_body("10200"), secret="nope").status == 401
        h = d.json_headers(payment_body("10300"))
        del h["x-webhook-signature"]
        assert d.post(payment_body("10300"), h).status == 401
        assert d.request("GET", "/nowhere").status == 404
        assert d.request("GET", "/webhooks/cashfree").status == 405
        after = scrape(d)

        def delta(name):
            return after.get(name, 0) - before.get(name, 0)

        assert delta('cfhookd_http_requests_total{code="200"}') == 6   # 5 posts + 1 scrape
        assert delta('cfhookd_http_requests_total{code="401"}') == 2
        assert delta('cfhookd_http_requests_total{code="404"}') == 1
        assert delta('cfhookd_http_requests_total{code="405"}') == 1
        assert delta('cfhookd_events_total{type="PAYMENT_SUCCESS_WEBHOOK",result="new"}') == 3
        assert delta('cfhookd_events_total{type="PAYMENT_SUCCESS_WEBHOOK",result="duplicate"}') == 1
        assert delta('cfhookd_events_total{type="PAYMENT_FAILED_WEBHOOK",result="new"}') == 1
        assert delta('cfhookd_signature_failures_total{reason="mismatch"}') == 1
        assert delta('cfhookd_signature_failures_total{reason="missing"}') == 1
        assert after['cfhookd_http_request_duration_seconds_count'] >= 10
        assert after['cfhookd_http_request_duration_seconds_bucket{le="+Inf"}'] == \
            after['cfhookd_http_request_duration_seconds_count']
        assert after['cfhookd_outbox_pending'] == 0
        assert after['cfhookd_outbox_dead'] == 0
        for result in ("ok", "failed", "timeout", "unanswered", "interrupted"):
            assert delta('cfhookd_forward_attempts_total{result="%s"}' % result) == 0
        assert any(k.startswith("cfhookd_build_info{") for k in after)


def test_timeouts_refusals_and_health_are_counted():
    import socket
    import time
    from harness import SLOW
    with Daemon(config={"max_body": "2048", "idle_timeout": "5", "request_timeout": "2"}) as d:
        before = scrape(d)
        big = payment_body("10400")[:-1] + b',"pad":"' + b"p" * 3000 + b'"}'
        assert d.post_json(big).status == 413
        assert d.request("POST", "/webhooks/cashfree", b"{}",
                         {"Content-Type": "text/plain"}).status == 415
        assert d.request("GET", "/healthz").status == 200
        # a client trickling its headers is cut off: counted as 408
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"POST /webhooks/cashfree HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(0.5)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 15 * SLOW:
            try:
                s.sendall(b"X-Slow: 1\r\n")
                if s.recv(100) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        s.close()
        d.wait_log("request_timeout")
        after = scrape(d)

        def delta(name):
            return after.get(name, 0) - before.get(name, 0)

        assert delta('cfhookd_http_requests_total{code="413"}') == 1
        assert delta('cfhookd_http_requests_total{code="415"}') == 1
        assert delta('cfhookd_http_requests_total{code="408"}') == 1
        assert delta('cfhookd_http_requests_total{code="200"}') == 2     # healthz + scrape
        assert delta('cfhookd_http_request_duration_seconds_count') == 5
        # the 408 waited about request_timeout: it lands in a bucket >= 1 s
        assert delta('cfhookd_http_request_duration_seconds_bucket{le="1"}') == 4
        assert after["cfhookd_writer_queued"] == 0


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def test_forward_attempts_count_each_result_and_agree_with_forward_log():
    """A hook that delivers some events at once, refuses one the first time
    and hangs past the timeout on another the first time: each attempt
    moves its counter once, and the counters add up to forward_log."""
    with Daemon(config={"forward_backoff": 1, "forward_timeout": 1}, start=False) as d:
        hook = os.path.join(d.tmp, "hook.sh")
        with open(hook, "w") as f:
            f.write("""#!/bin/sh
cat > /dev/null
case "$CFHOOK_CF_PAYMENT_ID:$CFHOOK_ATTEMPT" in
12001:1) echo "shop said no" >&2; exit 75 ;;
12002:1) sleep 30 ;;
esac
exit 0
""")
        os.chmod(hook, 0o755)
        d.config["forward"] = "hook:" + hook
        d.write_config()
        d.start()
        before = scrape(d)
        for pid in ("12000", "12001", "12002", "12003"):
            assert d.post_json(payment_body(pid, order_id="m-" + pid)).status == 200
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                   == 4, 20, "every event delivered")
        wait_until(lambda: scrape(d)['cfhookd_forward_attempts_total{result="ok"}']
                   - before['cfhookd_forward_attempts_total{result="ok"}'] == 4, 5,
                   "the last outcome counted")
        after = scrape(d)

        def delta(result):
            k = 'cfhookd_forward_attempts_total{result="%s"}' % result
            return after[k] - before[k]

        assert delta("ok") == 4
        assert delta("failed") == 1
        assert delta("timeout") == 1
        assert delta("unanswered") == 0 and delta("interrupted") == 0
        ok1, ok0, null = d.rows("SELECT sum(ok = 1), sum(ok = 0), sum(ok IS NULL)"
                                " FROM forward_log")[0]
        assert (ok1, ok0, null) == (4, 2, 0)
        assert delta("ok") == ok1
        assert delta("failed") + delta("timeout") + delta("unanswered") == ok0
        assert delta("interrupted") == null


def test_unanswered_attempts_are_counted():
    """A consumer that dies with envelopes on its connection: the cut-off
    ones count as 'unanswered', and all the counters still add up to
    forward_log."""
    with Daemon(config={"forward_backoff": 60, "forward_concurrency": 4}, start=False) as d:
        path = os.path.join(d.tmp, "c.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(4)

        def die_with_three_unanswered():
            c, _ = srv.accept()
            buf = b""
            while buf.count(b"\n") < 3:
                data = c.recv(65536)
                if not data:
                    break
                buf += data
            c.close()           # three envelopes in, none answered
            srv.close()
            os.unlink(path)
        t = threading.Thread(target=die_with_three_unanswered, daemon=True)
        t.start()
        d.config["forward"] = "unix:" + path
        d.write_config()
        d.start()
        before = scrape(d)
        for i in range(3):
            assert d.post_json(payment_body(str(12100 + i), order_id="u-%d" % i)).status == 200
        # all three wait out a long backoff (the unanswered were sent again
        # at once, and refused): nothing moves while the numbers are read
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE next_attempt_at > ?",
                                  (int(time.time() * 1000),))[0][0] == 3,
                   10, "every event in its backoff")
        time.sleep(0.3)
        after = scrape(d)

        def delta(result):
            k = 'cfhookd_forward_attempts_total{result="%s"}' % result
            return after[k] - before[k]
        assert delta("unanswered") >= 1, after
        ok1, ok0 = d.rows("SELECT count(*) FILTER (WHERE ok = 1), count(*) FILTER (WHERE ok = 0)"
                          " FROM forward_log")[0]
        assert delta("ok") == ok1
        assert delta("failed") + delta("timeout") + delta("unanswered") == ok0
        unanswered = d.rows("SELECT count(*) FROM forward_log WHERE error LIKE 'not answered:%'")
        assert delta("unanswered") == unanswered[0][0]


def test_oldest_pending_and_last_event_gauges():
    """cfhookd_forward_oldest_pending_seconds: the age of the oldest event
    still waiting (0 when none waits); it grows while the consumer is
    down and drops to 0 once it is delivered.
    cfhookd_last_event_received_timestamp_seconds: when intake last
    accepted an event (0 before the first)."""
    with Daemon(config={"forward_backoff": 1}, start=False) as d:
        path = os.path.join(d.tmp, "late.sock")
        d.config["forward"] = "unix:" + path
        d.write_config()
        d.start()
        first = scrape(d)
        assert first["cfhookd_forward_oldest_pending_seconds"] == 0
        assert first["cfhookd_last_event_received_timestamp_seconds"] == 0
        t0 = time.time()
        assert d.post_json(payment_body("12200", order_id="g-1")).status == 200
        t1 = time.time()
        time.sleep(1.5)
        mid = scrape(d)
        assert t0 - 1 <= mid["cfhookd_last_event_received_timestamp_seconds"] <= t1 + 1, mid
        age = mid["cfhookd_forward_oldest_pending_seconds"]
        assert 1.0 <= age <= time.time() - t0 + 1, age
        time.sleep(1.0)
        assert scrape(d)["cfhookd_forward_oldest_pending_seconds"] > age
        # a duplicate delivery moves the intake gauge too
        time.sleep(0.05)
        t2 = time.time()
        assert d.post_json(payment_body("12200", order_id="g-1")).status == 200
        assert scrape(d)["cfhookd_last_event_received_timestamp_seconds"] >= t2 - 0.01
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(4)

        def consume():
            c, _ = srv.accept()
            f = c.makefile("rb")
            for line in f:
                c.sendall(b"OK\n")
        threading.Thread(target=consume, daemon=True).start()
        try:
            wait_until(lambda: d.rows("SELECT forward_state FROM events")[0][0] == "done", 15,
                       "the delivery")
            wait_until(lambda: scrape(d)["cfhookd_forward_oldest_pending_seconds"] == 0, 5,
                       "the gauge back at 0")
        finally:
            srv.close()
