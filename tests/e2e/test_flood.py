"""Connection floods on the TCP listener (README "HTTP behaviour"): thousands
of idle connections and slowloris clients must not delay a genuine webhook;
the longest-waiting connection makes room at max_connections, slow headers
are cut at header_timeout, bodies share a memory budget, and the open-file
limit is raised for max_connections. Every socket a test opens is closed
before it returns, also when it fails."""

import os
import re
import resource
import select
import socket
import sys
import threading
import time

import harness
from harness import Daemon, SLOW, Skip, payment_body

IDLE = 5000
SLOWLORIS = 300
MAX_CONNECTIONS = 4096          # the default
# cfhookd keeps this many descriptors beyond its connections (http.c)
FD_RESERVE = 256


def spare(n):
    return n // 16 + 16


def need_nofile(n):
    """Raises this process's soft RLIMIT_NOFILE to n (the daemon inherits
    it), or skips with the reason. Returns the limits to restore."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(hard, n)))
    except (ValueError, OSError) as e:
        raise Skip("needs %d open files, RLIMIT_NOFILE is %d/%d and cannot be raised (%s)"
                   % (n, soft, hard, e))
    return soft, hard


def restore_nofile(limits):
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    except (ValueError, OSError):
        pass                    # a raised hard limit stays: harmless


def open_nonblocking(port, n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
    except BaseException:
        close_all(socks)
        raise
    return socks


def open_in_batches(port, n, timeout, batch=400):
    """n connections, a batch at a time, each batch connected before the
    next (smaller than the listen backlog of 511: no SYN is dropped, so the
    daemon accepts them in the order they were opened)."""
    socks = []
    try:
        while len(socks) < n:
            more = open_nonblocking(port, min(batch, n - len(socks)))
            socks.extend(more)
            assert wait_connected(more, timeout) == len(more)
    except BaseException:
        close_all(socks)
        raise
    return socks


def wait_connected(socks, timeout):
    """Until every connect has finished (the kernel may drop SYNs while the
    backlog is full: they are retried). Returns how many succeeded."""
    p = select.poll()
    left = {s.fileno(): s for s in socks}
    for fd in left:
        p.register(fd, select.POLLOUT)
    ok = 0
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        for fd, _ in p.poll(200):
            s = left.pop(fd, None)
            if s is None:
                continue
            p.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                ok += 1
    return ok


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def is_closed_by_peer(s):
    """True when the daemon closed s (EOF or reset), False while it is open
    and silent. Reads nothing; the socket's timeout is kept."""
    timeout = s.gettimeout()
    s.settimeout(0)
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.settimeout(timeout)


def answered(s):
    """True when the daemon has sent something on s, or closed it."""
    timeout = s.gettimeout()
    s.settimeout(0)
    try:
        s.recv(1, socket.MSG_PEEK)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.settimeout(timeout)


class Trickler(threading.Thread):
    """Slowloris: each connection sends a request line, then one header
    byte per connection every `every` seconds, never finishing its head.
    Records when the daemon closed each one."""

    def __init__(self, socks, every=0.25):
        super().__init__(daemon=True)
        self.socks, self.every = socks, every
        self.started = time.monotonic()
        self.closed_at = {}
        self.stop = threading.Event()

    def run(self):
        line = b"POST /webhooks/cashfree HTTP/1.1\r\nHost: x\r\nX-Slow: "
        first = True
        while not self.stop.is_set():
            for i, s in enumerate(self.socks):
                if i in self.closed_at:
                    continue
                try:
                    s.send(line if first else b"a")
                    if is_closed_by_peer(s):
                        self.closed_at[i] = time.monotonic() - self.started
                except OSError:
                    self.closed_at[i] = time.monotonic() - self.started
            first = False
            self.stop.wait(self.every)

    def finish(self):
        self.stop.set()
        self.join(10)


def wait_n_closed(socks, n, timeout):
    deadline = time.monotonic() + timeout * SLOW
    while sum(1 for s in socks if is_closed_by_peer(s)) < n:
        assert time.monotonic() < deadline, "fewer than %d connections closed" % n
        time.sleep(0.2)


def daemon_fds(d):
    return len(os.listdir("/proc/%d/fd" % d.proc.pid))


def timed_post(d, cf_payment_id):
    body = payment_body(cf_payment_id)
    t0 = time.monotonic()
    r = d.post_json(body)
    return r, time.monotonic() - t0


def scrape(d, name):
    text = d.request("GET", "/metrics").body.decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else 0


def test_genuine_webhook_answered_within_a_second_under_a_flood():
    """5,000 idle connections and 300 slowloris clients on the default
    max_connections: a genuine signed webhook is answered 200 within 1 s.
    The timeouts are long here, so only making room at max_connections (not
    a deadline) can be what lets it in."""
    limits = need_nofile(IDLE + SLOWLORIS + 1024)
    idle, slow, trickler = [], [], None
    try:
        with Daemon(config={"idle_timeout": "300", "header_timeout": "300",
                            "request_timeout": "600", "log_level": "info"}) as d:
            idle = open_in_batches(d.port, IDLE, 20 * SLOW)
            # the daemon holds max_connections and has closed the longest
            # waiting (the first opened) to stay there
            made_room = IDLE - MAX_CONNECTIONS
            wait_n_closed(idle, made_room, 30)
            slow = open_in_batches(d.port, SLOWLORIS, 20 * SLOW)
            for s in slow:
                s.setblocking(True)
            trickler = Trickler(slow)
            trickler.start()
            made_room += SLOWLORIS
            wait_n_closed(idle, made_room, 30)
            # the first opened went first (two threads accept, so the order
            # is the order of arrival give or take a few)
            gone = [i for i, s in enumerate(idle) if is_closed_by_peer(s)]
            assert len(gone) == made_room and max(gone) < made_room + 64, \
                (len(gone), max(gone))
            assert daemon_fds(d) >= MAX_CONNECTIONS, daemon_fds(d)
            d.wait_log(r"max_connections \(%d\) reached: closed \d+ connections? waiting"
                       % MAX_CONNECTIONS)
            worst = 0.0
            for i in range(5):
                r, took = timed_post(d, "77%04d" % i)
                assert r.status == 200, r
                worst = max(worst, took)
            assert worst < 1.0 * SLOW, "a genuine webhook took %.3f s" % worst
            # the slowloris clients are still there, sending (newer than the
            # idle ones, so not the ones closed to make room)
            assert trickler.closed_at == {}, trickler.closed_at
            # the first genuine connection made room by closing one idle one
            # (the later ones, as the one before had gone, may not have had to)
            closed = sum(1 for s in idle if is_closed_by_peer(s))
            assert made_room + 1 <= closed <= made_room + 5, (closed, made_room)
            assert d.rows("SELECT count(*) FROM events")[0][0] == 5
    finally:
        if trickler is not None:
            trickler.finish()
        close_all(idle + slow)
        restore_nofile(limits)


def connect_accepted(d):
    """A new connection, once the daemon has accepted it (its fds grew), so
    that connections reach the daemon in the order they are opened."""
    before = daemon_fds(d)
    s = socket.create_connection(("127.0.0.1", d.port))
    deadline = time.monotonic() + 5 * SLOW
    while daemon_fds(d) <= before:
        assert time.monotonic() < deadline, "the daemon did not accept"
        time.sleep(0.01)
    return s


def test_the_longest_waiting_connection_makes_room():
    """At max_connections a new connection closes the one that has waited
    longest for a request (fresh or kept alive), never a request under way."""
    socks = []
    try:
        with Daemon(config={"max_connections": "6", "idle_timeout": "120",
                            "header_timeout": "120", "request_timeout": "120"}) as d:
            # a kept-alive connection that served one request
            kept = d.connection()
            kept.request("POST", "/webhooks/cashfree", body=payment_body("7801"),
                         headers=d.json_headers(payment_body("7801")))
            r = kept.getresponse()
            assert r.status == 200 and r.read()
            # The daemon files it as waiting once its worker thread has
            # finished the request, just after the answer went out; a
            # worker held off the CPU for that long (ASan, CI load) made a
            # fresh connection below the longest waiting, and the test
            # expected the wrong one to go. Nothing outside shows that
            # moment, so give it time.
            time.sleep(0.2 * SLOW)
            # a request under way: its head is in (the daemon asks for the
            # body: 100 Continue), its body not yet
            body = payment_body("7802")
            busy = connect_accepted(d)
            socks.append(busy)
            h = d.json_headers(body)
            head = "POST /webhooks/cashfree HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + \
                "".join("%s: %s\r\n" % kv for kv in h.items()) + \
                "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
            busy.settimeout(10 * SLOW)
            busy.sendall(head.encode())
            assert busy.recv(100).startswith(b"HTTP/1.1 100"), "no 100 Continue"
            fresh = []
            for _ in range(4):          # 6 open: kept, busy, 4 fresh
                fresh.append(connect_accepted(d))
                socks.append(fresh[-1])
            assert not any(is_closed_by_peer(s) for s in [kept.sock, busy] + fresh)
            # the 7th: the kept-alive one has waited longest (the busy one
            # is not waiting), so it goes
            socks.append(socket.create_connection(("127.0.0.1", d.port)))
            wait_closed(kept.sock)
            assert not any(is_closed_by_peer(s) for s in [busy] + fresh)
            # a genuine request: the oldest fresh one makes room for it
            r, took = timed_post(d, "7803")
            assert r.status == 200 and took < 1.0 * SLOW, (r, took)
            wait_closed(fresh[0])
            assert not any(is_closed_by_peer(s) for s in [busy] + fresh[1:])
            # the request under way was never touched: it completes
            busy.sendall(body)
            assert busy.recv(4096).startswith(b"HTTP/1.1 200"), "the busy request was lost"
            d.wait_log(r"max_connections \(6\) reached: closed \d+ connections? waiting")
            assert {r[0] for r in d.rows("SELECT cf_payment_id FROM events")} == \
                {"7801", "7802", "7803"}
            kept.close()
    finally:
        close_all(socks)


def wait_closed(s, timeout=5):
    deadline = time.monotonic() + timeout * SLOW
    while not is_closed_by_peer(s):
        assert time.monotonic() < deadline, "the daemon did not close the connection"
        time.sleep(0.05)


def test_slow_headers_are_cut_at_header_timeout():
    """header_timeout: a new connection must send a complete head within it
    of connecting (silent ones too, quietly); a kept-alive connection waits
    for its next request up to idle_timeout, then has header_timeout from
    its request line. Counted as 408 and logged once per second, not once
    per connection."""
    socks, trickler = [], None
    try:
        with Daemon(config={"header_timeout": "2", "idle_timeout": "30",
                            "request_timeout": "60", "log_level": "info"}) as d:
            before = scrape(d, 'cfhookd_http_requests_total{code="408"}')
            kept = d.connection()
            b = payment_body("7901")
            kept.request("POST", "/webhooks/cashfree", body=b, headers=d.json_headers(b))
            r = kept.getresponse()
            assert r.status == 200 and r.read()
            kept_idle = time.monotonic()
            silent = socket.create_connection(("127.0.0.1", d.port))
            socks.append(silent)
            slow = open_nonblocking(d.port, 20)
            socks.extend(slow)
            assert wait_connected(slow, 10 * SLOW) == 20
            for s in slow:
                s.setblocking(True)
            trickler = Trickler(slow, every=0.2)
            trickler.start()
            # meanwhile a genuine request is served
            r, took = timed_post(d, "7902")
            assert r.status == 200 and took < 1.0 * SLOW
            deadline = time.monotonic() + 10 * SLOW
            while len(trickler.closed_at) < 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(trickler.closed_at) == 20, trickler.closed_at
            # due 2 s after the connect, reaped on the next 1 s tick
            assert all(1.5 < t < 5 * SLOW for t in trickler.closed_at.values()), \
                trickler.closed_at
            wait_closed(silent, 5)
            # the kept-alive connection, idle for longer than header_timeout,
            # still serves: waiting for a request is idle_timeout's business
            time.sleep(max(0, kept_idle + 3.5 - time.monotonic()))
            assert not is_closed_by_peer(kept.sock)
            b = payment_body("7903")
            kept.request("POST", "/webhooks/cashfree", body=b, headers=d.json_headers(b))
            assert kept.getresponse().status == 200
            # ... but once it starts a request, its head is due in 2 s
            kept.sock.sendall(b"POST /webhooks/cashfree HTTP/1.1\r\nX-Slow: ")
            t0 = time.monotonic()
            while not is_closed_by_peer(kept.sock):
                assert time.monotonic() - t0 < 6 * SLOW, "kept-alive slow head never cut"
                try:
                    kept.sock.sendall(b"a")
                except OSError:
                    break
                time.sleep(0.2)
            assert time.monotonic() - t0 > 1.5
            kept.close()
            d.wait_log(r"http: closed \d+ connections that did not send their headers "
                       r"within header_timeout \(2 s\)")
            assert len(re.findall(r"header_timeout \(2 s\)", d.log())) < 21
            # 20 slowloris + the kept-alive one; the silent one is not a request
            after = scrape(d, 'cfhookd_http_requests_total{code="408"}')
            assert after - before == 21, (before, after)
            assert d.post_json(payment_body("7904")).status == 200
    finally:
        if trickler is not None:
            trickler.finish()
        close_all(socks)


def test_bodies_share_a_memory_budget():
    """Bodies held at once are capped (64 MiB with the default max_body; a
    body of known length is charged before it is read): past it a request is
    answered 503 at once (Cashfree retries) instead of the daemon growing by
    max_connections x max_body; the budget comes back when the bodies go."""
    hogs = []
    limits = need_nofile(2048)
    try:
        with Daemon(config={"idle_timeout": "60", "request_timeout": "120"}) as d:
            head = (b"POST /webhooks/cashfree HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 262144\r\n\r\n")
            # 256 x 262144 = 64 MiB exactly: 256 of these fill the budget,
            # unfinished; the other 24 are turned away at once, unread
            for _ in range(280):
                s = socket.create_connection(("127.0.0.1", d.port))
                hogs.append(s)
                s.sendall(head + b"p" * 1000)
            deadline = time.monotonic() + 10 * SLOW
            while sum(1 for s in hogs if answered(s)) < 24:
                assert time.monotonic() < deadline, "no 503 for the bodies past the budget"
                time.sleep(0.1)
            time.sleep(0.5)
            refused = [s for s in hogs if answered(s)]
            assert len(refused) == 24
            for s in refused:
                s.settimeout(10 * SLOW)
                out = b""
                while True:             # up to the close
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    out += chunk
                assert out.startswith(b"HTTP/1.1 503"), out[:100]
                assert out.endswith(b'{"error":"busy, retry later"}'), out
            # a small body no longer fits either; a chunked one gets its 503
            # after its end
            r = d.post_json(payment_body("7951"))
            assert r.status == 503 and r.json() == {"error": "busy, retry later"}, r
            conn = d.connection()
            b = payment_body("7951")
            conn.request("POST", "/webhooks/cashfree", body=iter([b[:10], b[10:]]),
                         headers=d.json_headers(b), encode_chunked=True)
            assert conn.getresponse().status == 503
            conn.close()
            d.wait_log(r"http: 503 bodies in memory reached their budget \(67108864 bytes\), "
                       r"not read from 127\.0\.0\.1")
            assert d.rows("SELECT count(*) FROM events")[0][0] == 0
            close_all(hogs)
            hogs = []
            deadline = time.monotonic() + 10 * SLOW
            while True:
                r = d.post_json(payment_body("7951"))
                if r.status == 200:
                    break
                assert r.status == 503 and time.monotonic() < deadline, r
                time.sleep(0.2)
            assert d.rows("SELECT count(*) FROM events")[0][0] == 1
    finally:
        close_all(hogs)
        restore_nofile(limits)


def proc_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def test_open_file_limit_is_raised_for_max_connections():
    """Started with the usual soft limit of 1024, cfhookd raises it to what
    max_connections needs (not to the hard limit: hooks inherit it); with a
    hard limit too low it serves fewer connections, says so, and still makes
    room for a genuine request."""
    want = MAX_CONNECTIONS + spare(MAX_CONNECTIONS) + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want:
        raise Skip("the hard RLIMIT_NOFILE (%d) is below %d" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        with Daemon() as d:
            assert proc_nofile(d.proc.pid) == (want, hard)
            assert "open-file limit" not in d.log()
    finally:
        restore_nofile((soft, hard))
    # A hard limit of 700 (set by a wrapper that execs cfhookd, so this
    # process keeps its own): room for (700 - 256 - 16) * 16 / 17 = 402.
    socks = []
    with Daemon(config={"idle_timeout": "60", "header_timeout": "60"}, start=False) as d:
        wrapper = os.path.join(d.tmp, "cfhookd-nofile-700")
        with open(wrapper, "w") as f:
            f.write("#!%s\nimport os, resource, sys\n"
                    "resource.setrlimit(resource.RLIMIT_NOFILE, (700, 700))\n"
                    "os.execv(%r, [%r] + sys.argv[1:])\n"
                    % (sys.executable, harness.binary(), harness.binary()))
        os.chmod(wrapper, 0o755)
        real = harness.binary
        harness.binary = lambda name="cfhookd": wrapper
        try:
            d.start()
        finally:
            harness.binary = real
        try:
            assert proc_nofile(d.proc.pid) == (700, 700)
            d.wait_log(r"the open-file limit \(700\) leaves room for 402 connections, "
                       r"fewer than max_connections \(4096\)")
            socks = open_nonblocking(d.port, 450)
            assert wait_connected(socks, 10 * SLOW) == 450
            d.wait_log(r"max_connections \(402\) reached")
            r, took = timed_post(d, "7971")
            assert r.status == 200 and took < 1.0 * SLOW, (r, took)
        finally:
            close_all(socks)
