"""A real nginx, configured with the shipped conf/nginx-cfhookd.conf, in
front of cfhookd on a unix socket: signed events pass with their bytes
intact, an oversize body stops at nginx (413), other methods get cfhookd's
405, and the optional allow-list include works."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import SECRET, SLOW, Daemon, free_port, load_vectors, payment_body, sign_json

SNIPPET = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "conf", "nginx-cfhookd.conf")
ALLOW_SAMPLE = os.path.join(os.path.dirname(SNIPPET), "nginx-cashfree-allow.conf")
SHIPPED_SOCKET = "/run/cfhookd/http.sock"
SHIPPED_ALLOW = "/etc/nginx/cfhookd-allow[.]conf"
MAX_BODY = 262144           # cfhookd's default max_body = nginx's 256k


def nginx_binary():
    for p in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if p and os.access(p, os.X_OK):
            return p
    raise AssertionError("nginx not found (scripts/install-deps installs nginx-light)")


class Nginx:
    """nginx in the foreground in its own directory, the shipped snippet
    included in a server on 127.0.0.1:PORT with only the socket path and the
    allow-list path changed."""

    def __init__(self, socket_path, allow=None):
        self.dir = tempfile.mkdtemp(prefix="cfhookd-nginx-")
        self.port = free_port()
        with open(SNIPPET) as f:
            text = f.read()
        for old in (SHIPPED_SOCKET, SHIPPED_ALLOW):
            assert old in text, "the shipped snippet no longer mentions " + old
        text = text.replace(SHIPPED_SOCKET, socket_path)
        text = text.replace(SHIPPED_ALLOW, os.path.join(self.dir, "cfhookd-allow[.]conf"))
        with open(os.path.join(self.dir, "cfhookd.conf"), "w") as f:
            f.write(text)
        if allow is not None:
            with open(os.path.join(self.dir, "cfhookd-allow.conf"), "w") as f:
                f.write(allow)
        d = self.dir
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.mkdir(os.path.join(d, sub))
        conf = []
        if os.geteuid() == 0:
            # workers must reach cfhookd's socket (mode 0660, owned by us)
            conf.append("user root;")
        conf += ["worker_processes 1;",
                 "pid %s/nginx.pid;" % d,
                 "error_log %s/error.log info;" % d,
                 "events { worker_connections 64; }",
                 "http {",
                 "  access_log %s/access.log;" % d,
                 "  client_body_temp_path %s/body;" % d,
                 "  proxy_temp_path %s/proxy;" % d,
                 "  fastcgi_temp_path %s/fastcgi;" % d,
                 "  uwsgi_temp_path %s/uwsgi;" % d,
                 "  scgi_temp_path %s/scgi;" % d,
                 "  server {",
                 "    listen 127.0.0.1:%d;" % self.port,
                 "    include %s/cfhookd.conf;" % d,
                 "  }",
                 "}"]
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        base = [nginx_binary(), "-p", d + "/", "-c", self.conf, "-e", d + "/error.log"]
        t = subprocess.run(base + ["-t"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert t.returncode == 0, "nginx -t failed:\n" + t.stdout.decode(errors="replace")
        self.out = open(os.path.join(d, "stderr.log"), "wb")
        self.proc = subprocess.Popen(base + ["-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out)
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket()
            ok = s.connect_ex(("127.0.0.1", self.port)) == 0
            s.close()
            if ok:
                break
            assert self.proc.poll() is None, "nginx exited:\n" + self.errors()
            assert time.monotonic() < deadline, "nginx never listened:\n" + self.errors()
            time.sleep(0.05)

    def errors(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    text += f.read().decode(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15 * SLOW)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)       # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print("---- nginx log ----\n" + self.errors()[-3000:])
        self.close()
        return False


def vector(name):
    return [c for c in load_vectors() if c["name"] == name][0]


def stored_body(d, event_key):
    rows = d.rows("SELECT CAST(body AS BLOB), content_type FROM events WHERE event_key = ?",
                  (event_key,))
    assert rows, "no row for " + event_key
    return rows[0][0], rows[0][1]


def padded_body(total, cf_payment_id, prefix=b""):
    """A payment event of exactly `total` bytes: a padding field inside,
    starting with `prefix` (JSON string content)."""
    base = payment_body(cf_payment_id=cf_payment_id, order_id="order_big")
    pad_field = b',"pad":""'
    fill = total - len(base) - len(pad_field) - len(prefix)
    assert fill >= 0
    body = base[:-1] + b',"pad":"' + prefix + b"x" * fill + b'"}'
    assert len(body) == total
    return body


def test_signed_events_pass_unchanged():
    # the form vector is signed by its field: that scheme must be on
    with Daemon(listen="unix", start=False, config={"form_field_signature": "on"}) as d:
        d.start()
        with Nginx(d.unix_path) as ng:
            # recorded Cashfree JSON: headers and bytes exactly as signed
            case = vector("json_2023_success_doc_sample")
            st, _, body = ng.request("POST", "/webhooks/cashfree", case["body"].encode(),
                                     case["headers"])
            assert st == 200, (st, body)
            raw, ctype = stored_body(d, case["dedup"]["value"])
            assert raw == case["body"].encode()
            assert ctype.startswith("application/json")
            # form-encoded Payment Link event, signature inside the body
            case = vector("form_link_paid_sorted")
            st, _, body = ng.request("POST", "/webhooks/cashfree", case["body"].encode(),
                                     case["headers"])
            assert st == 200, (st, body)
            raw, ctype = stored_body(d, case["dedup"]["value"])
            assert raw == case["body"].encode()
            assert ctype.startswith("application/x-www-form-urlencoded")
            # the largest body both accept, with bytes nginx could mangle
            big = padded_body(MAX_BODY, "nginx-big-1",
                              prefix='\\u00e9 \u00e9 \\" \\\\ %2B+ \u20b9  '.encode())
            st, _, body = ng.request("POST", "/webhooks/cashfree", big, d.json_headers(big))
            assert st == 200, (st, body)
            raw, _ = stored_body(d, "PAYMENT_SUCCESS_WEBHOOK:nginx-big-1")
            assert raw == big
            # a duplicate through nginx: 200 again, one row, two deliveries
            st, _, _ = ng.request("POST", "/webhooks/cashfree", big, d.json_headers(big))
            assert st == 200
            assert d.rows("SELECT deliveries FROM events WHERE event_key = ?",
                          ("PAYMENT_SUCCESS_WEBHOOK:nginx-big-1",))[0][0] == 2
            # a bad signature is still refused by cfhookd, not by nginx
            h = d.json_headers(big, secret="cfhookd-TEST-ONLY-wrong")
            st, _, _ = ng.request("POST", "/webhooks/cashfree", big, h)
            assert st == 401
            # health through nginx, for this host only
            st, _, body = ng.request("GET", "/cfhookd/healthz")
            assert st == 200 and json.loads(body)["status"] == "ok", (st, body)
            st, h, body = ng.request("GET", "/cfhookd/metrics")
            assert st == 200 and h.get("content-type", "").startswith("text/plain"), (st, h)
            assert re.search(rb"^cfhookd_\w+", body, re.M), body[:300]
        d.stop()


def test_oversize_body_stopped_at_nginx():
    with Daemon(listen="unix", start=False) as d:
        d.start()
        with Nginx(d.unix_path) as ng:
            before = d.log()
            big = padded_body(MAX_BODY + 1, "nginx-big-2")
            st, _, _ = ng.request("POST", "/webhooks/cashfree", big, d.json_headers(big))
            assert st == 413, st
            # nginx refused it: cfhookd saw no request at all
            time.sleep(0.3)
            after = d.log()[len(before):]
            assert "413" not in after and "nginx-big-2" not in after, after
            assert d.event("PAYMENT_SUCCESS_WEBHOOK:nginx-big-2") is None
            assert re.search(r"client intended to send too large body", ng.errors()), \
                ng.errors()[-2000:]
        d.stop()


def test_other_methods_answered_by_cfhookd():
    with Daemon(listen="unix", start=False) as d:
        d.start()
        with Nginx(d.unix_path) as ng:
            for method in ("GET", "PUT", "DELETE"):
                st, h, _ = ng.request(method, "/webhooks/cashfree")
                assert st == 405, (method, st)
                assert h.get("allow") == "POST", (method, h)
            # paths outside the location never reach cfhookd
            st, _, _ = ng.request("POST", "/webhooks/cashfree/x", b"{}",
                                  {"Content-Type": "application/json"})
            assert st == 404
        d.stop()


def test_allow_list_include():
    """The shipped allow-list sample changes nothing as shipped; uncommented
    (placeholder addresses, then deny all) it shuts 127.0.0.1 out; an entry
    for 127.0.0.1 lets it in."""
    with open(ALLOW_SAMPLE) as f:
        sample = f.read()
    assert re.search(r"^#deny all;$", sample, re.M)
    uncommented = re.sub(r"^#((allow|deny) [^;]+;)$", r"\1", sample, flags=re.M)
    assert "\ndeny all;" in uncommented
    body = payment_body(cf_payment_id="nginx-allow-1")
    with Daemon(listen="unix", start=False) as d:
        d.start()
        for allow, want in ((sample, 200), (uncommented, 403),
                            ("allow 127.0.0.1;\ndeny all;\n", 200)):
            with Nginx(d.unix_path, allow=allow) as ng:
                st, _, _ = ng.request("POST", "/webhooks/cashfree", body, d.json_headers(body))
                assert st == want, (st, want, allow[-200:])
        d.stop()
