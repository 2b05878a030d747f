"""cfhookd as systemd runs it, without systemd as PID 1: a socket passed by
systemd-socket-activate (unix and TCP) or by the test itself (a restart keeps
it), the sd_notify protocol on the harness's NOTIFY_SOCKET (READY, STATUS,
WATCHDOG cadence, RELOADING, STOPPING), secret rotation on SIGHUP without a
failed request, and the watchdog going quiet while the writer is stuck."""

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import harness
from harness import SECRET, SLOW, Daemon, binary, free_port, payment_body

ACTIVATE = shutil.which("systemd-socket-activate")
STATUS_RE = re.compile(r"STATUS=(\d+) events today, (\d+) pending, (\d+) dead")
# What systemd-socket-activate passes on: it starts the child with only
# these (and LISTEN_*), unlike the harness's plain start.
PASS_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ")


def need_activate():
    # scripts/install-deps installs `systemd`, which ships it
    assert ACTIVATE is not None, "systemd-socket-activate not found (package systemd)"
    return ACTIVATE


class Activated(Daemon):
    """cfhookd started the way a .socket unit starts it.

    via="activate": systemd-socket-activate -l ADDR runs cfhookd on the first
    connection (what systemd does for a socket-activated service).
    via="held": the test owns the listening socket (like systemd's .socket
    unit, it outlives cfhookd) and passes it as fd 3 with LISTEN_FDS=1.
    The `listen` key of the config names another address, which must stay
    unused: a passed socket wins.
    """

    def __init__(self, kind="unix", via="activate", watchdog_usec=None, creds=None,
                 extra_listen=(), **kw):
        kw.setdefault("start", False)
        super().__init__(listen=kind, **kw)
        self.kind, self.via = kind, via
        self.watchdog_usec = watchdog_usec
        self.creds = creds              # a CREDENTIALS_DIRECTORY, or None
        self.extra_listen = list(extra_listen)
        self.ready_base = 0
        self.config_unix, self.config_port = self.unix_path, self.port
        if kind == "unix":
            self.unix_path = os.path.join(self.tmp, "activated.sock")
            self.addr = self.unix_path
        else:
            self.port = free_port()
            self.addr = "127.0.0.1:%d" % self.port
        self.held = None
        if via == "held":
            self.held = self._listen_socket()

    def _listen_socket(self):
        if self.kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(self.unix_path)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
        s.listen(256)
        return s

    def child_env(self):
        env = {"NOTIFY_SOCKET": self.notify.path,
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1")}
        for k in PASS_ENV:
            if k in os.environ and k not in env:
                env[k] = os.environ[k]
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        if self.creds:
            env["CREDENTIALS_DIRECTORY"] = self.creds
        env.update(self.extra_env)
        return env

    def start(self, wait=True, timeout=None):
        if self.notify is None:
            self.notify = harness.Notify(os.path.join(self.tmp, "notify.sock"))
        self.logf = open(self.log_path, "ab")
        self.ready_base = self.notify.count("READY=1")
        cmd_tail = [binary(), "-c", self.conf_path] + self.args
        if self.via == "activate":
            if self.kind == "unix" and os.path.exists(self.unix_path):
                os.unlink(self.unix_path)       # left by an earlier run
            cmd = [need_activate(), "-l", self.addr]
            for a in self.extra_listen:
                cmd += ["-l", a]
            for k, v in sorted(self.child_env().items()):
                cmd += ["-E", "%s=%s" % (k, v)]
            self.proc = subprocess.Popen(cmd + cmd_tail, stdin=subprocess.DEVNULL,
                                         stdout=self.logf, stderr=self.logf, cwd=self.tmp,
                                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        else:
            fd = self.held.fileno()
            # fd 3 and LISTEN_PID of the process that execs cfhookd, as systemd
            # sets them; the shell execs, so its pid is cfhookd's
            script = ('n=$1; shift; [ "$n" = 3 ] || eval "exec 3<&$n $n<&-"; '
                      'LISTEN_FDS=1 LISTEN_PID=$$; export LISTEN_FDS LISTEN_PID; exec "$@"')
            env = {k: v for k, v in os.environ.items()
                   if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC",
                                "WATCHDOG_PID", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY")}
            env.update(self.child_env())
            self.proc = subprocess.Popen(["/bin/sh", "-c", script, "sh", str(fd)] + cmd_tail,
                                         stdin=subprocess.DEVNULL, stdout=self.logf,
                                         stderr=self.logf, env=env, cwd=self.tmp,
                                         pass_fds=(fd,))
        if wait:
            if self.via == "activate":
                self.trigger()
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=None):
        """Until a READY=1 newer than the last start()."""
        deadline = time.monotonic() + (timeout or 15 * SLOW)
        while self.notify.count("READY=1") <= self.ready_base:
            if self.proc.poll() is not None:
                raise AssertionError("cfhookd exited %d before READY=1:\n%s"
                                     % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("no READY=1:\n" + self.log())
            time.sleep(0.02)

    def wait_listening(self, timeout=10):
        """Until the activation socket listens (it accepts connections from
        then on, even before cfhookd runs). A unix socket's path exists from
        bind(), before listen(): a connection in between is refused."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kind == "unix" and unix_listening(self.unix_path):
                return
            if self.kind == "tcp" and tcp_listening(self.port):
                return
            time.sleep(0.02)
        raise AssertionError("activation socket never appeared:\n" + self.log())

    def trigger(self):
        """systemd-socket-activate starts cfhookd on the first connection."""
        self.wait_listening()
        deadline = time.monotonic() + 10
        while True:
            try:
                c = self.connection(timeout=2)
                c.connect()
                c.close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self):
        try:
            super().close()
        finally:
            if self.held is not None:
                self.held.close()


def tcp_listening(port):
    """A socket listens on 127.0.0.1:port (read from /proc, without
    connecting: a connection would start cfhookd)."""
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


def unix_listening(path):
    """A unix socket bound to path listens (its flags in /proc/net/unix carry
    __SO_ACCEPTCON), read without connecting."""
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                return True
    return False


def status_counts(text):
    m = STATUS_RE.search(text)
    return tuple(int(x) for x in m.groups()) if m else None


def write_creds(d, lines):
    path = os.path.join(d, "cashfree-secret")
    with open(path, "w") as f:
        f.write("".join(s + "\n" for s in lines))
    os.chmod(path, 0o400)


def ready_status(d, after=0.0):
    """The STATUS counts of the first READY=1 at or after `after`."""
    with d.notify.cond:
        msgs = list(d.notify.messages)
    for t, text in msgs:
        if t >= after and "READY=1" in text:
            m = STATUS_RE.search(text)
            assert m, "READY=1 without a readable STATUS=: %r" % text
            return tuple(int(x) for x in m.groups())
    return None


def body_for(i, prefix="sd"):
    return payment_body(cf_payment_id="%s%09d" % (prefix, i), order_id="order_%s_%d" % (prefix, i))


def assert_not_listening(d):
    """The address in the config stayed unused: the passed socket won."""
    if d.config_unix:
        assert not os.path.exists(d.config_unix), "cfhookd also bound " + d.config_unix
    else:
        s = socket.socket()
        try:
            assert s.connect_ex(("127.0.0.1", d.config_port)) != 0, \
                "cfhookd also listens on the config's port"
        finally:
            s.close()


def check_lifecycle(kind):
    with Activated(kind=kind) as d:
        d.start(wait=False)
        d.wait_listening()
        # the first request starts cfhookd; it waits in the backlog meanwhile
        body = body_for(1)
        r = d.post_json(body)
        assert r.status == 200, r
        d.wait_ready()
        ready = d.notify.wait_for(lambda t: "READY=1" in t, 1)
        assert STATUS_RE.search(ready), "READY=1 without STATUS=: %r" % ready
        r = d.post_json(body_for(2))
        assert r.status == 200, r
        assert d.request("GET", "/healthz").status == 200
        assert d.rows("SELECT CAST(body AS BLOB) FROM events WHERE cf_payment_id = ?",
                      ("sd000000001",))[0][0] == body
        assert_not_listening(d)
        # no WatchdogSec (no WATCHDOG_USEC): no pings
        assert d.notify.count("WATCHDOG=1") == 0
        t_stop = time.monotonic()
        d.send_signal(signal.SIGTERM)
        assert d.notify.wait_for(lambda t: "STOPPING=1" in t, 10 * SLOW), d.log()[-3000:]
        rc = d.wait()
        took = time.monotonic() - t_stop
        assert rc == 0, "exit %d:\n%s" % (rc, d.log()[-3000:])
        assert took < 10 * SLOW, "stopping took %.1fs" % took
        d.stop()
        ready_t = d.notify.times("READY=1")[0]
        stop_t = d.notify.times("STOPPING=1")[0]
        assert ready_t < stop_t


def test_socket_activation_unix():
    check_lifecycle("unix")


def test_socket_activation_tcp():
    check_lifecycle("tcp")


def test_two_passed_sockets_refused():
    """A .socket unit with two ListenStream= is a mistake: exit 1, said why."""
    port = free_port()
    with Activated(kind="unix", extra_listen=["127.0.0.1:%d" % port]) as d:
        d.start(wait=False)
        d.trigger()  # connects once the socket listens
        rc = d.proc.wait(15 * SLOW)
        d.proc = None
        d.logf.close()
        assert rc == 1, "exit %d with two sockets:\n%s" % (rc, d.log())
        assert "2 sockets" in d.log(), d.log()
        assert d.notify.count("READY=1") == 0


def test_watchdog_cadence_and_status():
    tmp = tempfile.mkdtemp(prefix="cfhookd-e2e-")
    try:
        with Activated(kind="unix", watchdog_usec=1000000, tmp=tmp) as d:
            d.start()
            assert ready_status(d) == (0, 0, 0), d.notify.messages
            t0 = time.monotonic()
            time.sleep(3.0)
            pings = [t for t in d.notify.times("WATCHDOG=1") if t0 <= t < t0 + 3.0]
            # every 0.5 s (half of WATCHDOG_USEC): about 6 in 3 s
            assert 4 <= len(pings) <= 9, "%d pings in 3 s" % len(pings)
            gaps = [b - a for a, b in zip(pings, pings[1:])]
            assert max(gaps) < 1.0, "a gap of %.2fs between pings" % max(gaps)
            # STATUS= is refreshed (every ~10 s) with the new counts
            for i in range(3):
                assert d.post_json(body_for(100 + i)).status == 200
            text = d.notify.wait_for(lambda t: "READY=1" not in t and
                                     (status_counts(t) or (0,))[0] == 3, 15 * SLOW)
            assert text, "no STATUS= with 3 events today: %r" % d.notify.messages[-5:]
            d.stop()
        # a restart reports what is already in the database
        os.unlink(os.path.join(tmp, "notify.sock"))
        with Activated(kind="unix", tmp=tmp) as d:
            d.start()
            assert ready_status(d) == (3, 0, 0), d.notify.messages
            d.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_reload_sequence_and_bad_config():
    with Activated(kind="unix") as d:
        d.start()
        t_hup = time.monotonic()
        d.send_signal(signal.SIGHUP)
        rel = d.notify.wait_for(lambda t: "RELOADING=1" in t, 10 * SLOW)
        assert rel and re.search(r"(^|\n)MONOTONIC_USEC=\d+(\n|$)", rel), rel
        assert d.notify.wait_for(lambda t: "READY=1" in t and STATUS_RE.search(t) and
                                 d.notify.times("READY=1")[-1] > t_hup, 10 * SLOW)
        rel_t = [t for t in d.notify.times("RELOADING=1") if t >= t_hup][0]
        ready_t = [t for t in d.notify.times("READY=1") if t >= t_hup][0]
        assert rel_t <= ready_t
        assert d.post_json(body_for(1)).status == 200
        # a broken config: logged with its line, the running one kept
        with open(d.conf_path, "a") as f:
            f.write("forward_backoff = soon\n")
        n_ready = d.notify.count("READY=1")
        d.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * SLOW
        while d.notify.count("READY=1") == n_ready:
            assert time.monotonic() < deadline, "no READY=1 after a failed reload"
            time.sleep(0.05)
        d.wait_log(r"cfhookd\.conf:\d+:.*forward_backoff")
        assert d.post_json(body_for(2)).status == 200
        assert d.proc.poll() is None
        d.write_config()
        d.stop()


def post_loop(d, secret, results, stop, prefix):
    """Posts new signed events back to back until stop is set."""
    i = 0
    while not stop.is_set():
        i += 1
        body = body_for(i, prefix)
        try:
            r = d.post_json(body, secret=secret)
            results.append((time.monotonic(), r.status))
        except OSError as e:
            results.append((time.monotonic(), repr(e)))


def test_reload_rotates_secret_without_failed_request():
    old, new = SECRET, "cfhookd-TEST-ONLY-secret-0002"
    with Activated(kind="unix") as d:
        d.start()
        assert d.post_json(body_for(1, "new"), secret=new).status == 401
        results, stop = [], threading.Event()
        threads = [threading.Thread(target=post_loop, args=(d, old, results, stop, "rot%d" % k))
                   for k in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            # rotation step 1: the new secret added, the old one kept
            d.write_secrets([new, old])
            t_hup = time.monotonic()
            d.send_signal(signal.SIGHUP)
            assert d.notify.wait_for(lambda t: "RELOADING=1" in t, 10 * SLOW)
            deadline = time.monotonic() + 10 * SLOW
            while not [t for t in d.notify.times("READY=1") if t > t_hup]:
                assert time.monotonic() < deadline, "no READY=1 after SIGHUP"
                time.sleep(0.02)
            r = d.post_json(body_for(2, "new"), secret=new)
            assert r.status == 200, r
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        bad = [r for r in results if r[1] != 200]
        assert not bad, "%d of %d requests failed during the reload: %r" % (
            len(bad), len(results), bad[:5])
        assert len(results) >= 10, "only %d requests during the reload" % len(results)
        assert min(t for t, _ in results) < t_hup < max(t for t, _ in results)
        n = d.rows("SELECT count(*) FROM events WHERE order_id LIKE 'order_rot%'")[0][0]
        assert n == len(results), (n, len(results))
        # step 2: the old secret removed
        d.write_secrets([new])
        n_ready = d.notify.count("READY=1")
        d.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * SLOW
        while d.notify.count("READY=1") == n_ready:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert d.post_json(body_for(3, "new"), secret=old).status == 401
        assert d.post_json(body_for(4, "new"), secret=new).status == 200
        d.stop()


def test_restart_on_held_socket_with_credential():
    """The production set-up: no secret_file, the secret in
    $CREDENTIALS_DIRECTORY (LoadCredential=), the socket owned by systemd.
    Rotating a credential takes a restart; with the socket held, requests
    sent meanwhile wait in the backlog and none fails."""
    old, new = SECRET, "cfhookd-TEST-ONLY-secret-0003"
    d = Activated(kind="unix", via="held", secrets=None)
    creds = os.path.join(d.tmp, "creds")
    os.mkdir(creds)
    write_creds(creds, [old])
    d.creds = creds
    d.secrets = [old, new]         # never in the log
    with d:
        d.start()
        assert d.post_json(body_for(1, "cr"), secret=old).status == 200
        assert d.post_json(body_for(2, "cr"), secret=new).status == 401
        results, stop = [], threading.Event()
        t = threading.Thread(target=post_loop, args=(d, old, results, stop, "rs"))
        t.start()
        try:
            time.sleep(0.5)
            # the operator: both secrets in the credential file, then
            # `systemctl restart cfhookd` (SIGTERM, then a new process)
            os.chmod(os.path.join(creds, "cashfree-secret"), 0o600)
            write_creds(creds, [new, old])
            d.send_signal(signal.SIGTERM)
            rc = d.proc.wait(20 * SLOW)
            assert rc == 0, d.log()[-3000:]
            d.logf.close()
            d.proc = None
            d.start()
            assert d.post_json(body_for(3, "cr"), secret=new).status == 200
            time.sleep(0.5)
        finally:
            stop.set()
            t.join()
        bad = [r for r in results if r[1] != 200]
        assert not bad, "%d of %d requests failed across the restart: %r" % (
            len(bad), len(results), bad[:5])
        assert len(results) >= 5
        n = d.rows("SELECT count(*) FROM events WHERE order_id LIKE 'order_rs%'")[0][0]
        assert n == len(results), (n, len(results))
        assert_not_listening(d)
        d.stop()


def test_drain_answers_request_in_flight():
    """SIGTERM while a request's body is still arriving: STOPPING=1, the
    request is answered 200 and stored, exit 0 within 10 s."""
    with Activated(kind="unix") as d:
        d.start()
        body = body_for(1, "drain")
        h = d.json_headers(body)
        head = "POST /webhooks/cashfree HTTP/1.1\r\nHost: localhost\r\n" + \
            "".join("%s: %s\r\n" % kv for kv in h.items()) + \
            "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SLOW)
        s.connect(d.unix_path)
        s.sendall(head.encode() + body[:20])
        time.sleep(0.3)
        t_stop = time.monotonic()
        d.send_signal(signal.SIGTERM)
        assert d.notify.wait_for(lambda t: "STOPPING=1" in t, 5 * SLOW)
        s.sendall(body[20:])
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        s.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        rc = d.wait()
        assert rc == 0, d.log()[-3000:]
        assert time.monotonic() - t_stop < 10 * SLOW
        d.stop()
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:drain000000001") is not None


def test_watchdog_stops_while_writer_stalled():
    with Activated(kind="unix", watchdog_usec=1000000) as d:
        d.start()
        assert d.post_json(body_for(1, "wd")).status == 200
        assert d.notify.wait_for(lambda t: "WATCHDOG=1" in t, 3 * SLOW)
        # another process holds the write lock; the writer waits on it
        con = sqlite3.connect(d.db_path, isolation_level=None, timeout=10)
        try:
            con.execute("BEGIN IMMEDIATE")
            held_at = time.monotonic()
            out = []
            t = threading.Thread(target=lambda: out.append(d.post_json(body_for(2, "wd"))))
            t.start()
            time.sleep(4.0)
            released_at = time.monotonic()
            con.execute("ROLLBACK")
        finally:
            con.close()
        t.join(15 * SLOW)
        assert out and out[0].status == 200, out
        deadline = time.monotonic() + 5 * SLOW
        while not [x for x in d.notify.times("WATCHDOG=1") if x > released_at]:
            assert time.monotonic() < deadline, "pings did not resume after the writer"
            time.sleep(0.05)
        pings = d.notify.times("WATCHDOG=1")
        during = [x for x in pings if held_at <= x <= released_at]
        span = [held_at] + during + [min(x for x in pings if x > released_at)]
        gap = max(b - a for a, b in zip(span, span[1:]))
        # pings every 0.5 s before; a writer stuck for 4 s stops them for
        # well over 2 intervals
        assert gap > 1.5, "largest gap %.2fs while the writer was stuck: %r" % (
            gap, [round(x - held_at, 2) for x in during])
        d.wait_log(r"watchdog: .*writer")
        d.stop()


def test_sample_config_under_activation():
    """conf/cfhookd.conf as shipped, with only the paths of this machine
    swapped in (database, hook), run the systemd way: passed socket,
    credential, watchdog. The event reaches the hook."""
    sample = os.path.join(harness.TOP, "conf", "cfhookd.conf")
    d = Activated(kind="unix", secrets=None, watchdog_usec=2000000)
    try:
        creds = os.path.join(d.tmp, "creds")
        os.mkdir(creds)
        write_creds(creds, [SECRET])
        d.creds, d.secrets = creds, [SECRET]
        hook = os.path.join(d.tmp, "hook")
        seen = os.path.join(d.tmp, "hook.out")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\necho \"$CFHOOK_EVENT_KEY\" >> '%s'\ncat >/dev/null\n" % seen)
        os.chmod(hook, 0o755)
        text, n = open(sample).read(), 0
        for old, new in (("database = /var/lib/cfhookd/events.db", "database = " + d.db_path),
                         ("\n#forward = hook:/usr/local/lib/cfhookd/fulfil-hook\n",
                          "\nforward = hook:%s\n" % hook)):
            assert old in text, "the sample no longer has %r" % old
            text = text.replace(old, new)
        with open(d.conf_path, "w") as f:
            f.write(text)
        d.start()
        r = d.post_json(body_for(1, "sample"))
        assert r.status == 200, r
        deadline = time.monotonic() + 15 * SLOW
        while not (os.path.exists(seen) and open(seen).read()):
            assert time.monotonic() < deadline, "the hook never ran:\n" + d.log()[-3000:]
            time.sleep(0.05)
        assert open(seen).read() == "PAYMENT_SUCCESS_WEBHOOK:sample000000001\n"
        # listen = unix:/run/cfhookd/http.sock was ignored for the passed socket
        assert d.notify.wait_for(lambda t: "WATCHDOG=1" in t, 3 * SLOW)
        d.stop()
    finally:
        d.close()
