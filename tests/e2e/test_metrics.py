"""GET /metrics: Prometheus text, every series cfhookd_*, counters match the
requests this test sent."""

import re

from harness import Daemon, payment_body

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
        assert 'cfhookd_forward_attempts_total{result="ok"}' in after
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
