"""End-to-end harness: runs the real build/cfhookd in a temp dir and talks to it
over real sockets. Python standard library only.

    with Daemon() as d:                       # starts, waits for READY=1
        r = d.post_json(body)                 # signed with d.secrets[0]
        assert r.status == 200
        assert d.rows("SELECT count(*) FROM events")[0][0] == 1
    # leaving the block sends SIGTERM, expects exit 0 and a clean sanitizer log

With CFHOOK_E2E_STORE=postgresql (run.py --store postgresql) every Daemon
gets a fresh PostgreSQL database on the server $CFHOOK_TEST_PG names (tests/run
starts one) instead of an SQLite file: d.db_path is then its URI (cfhookctl -d
takes it), and d.rows() / d.execute() run the same SQL there.
"""

import base64
import hashlib
import hmac
import http.client
import json
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
import urllib.parse

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CFHOOKD_BUILD", os.path.join(TOP, "build"))
if not os.path.isabs(BUILD):
    BUILD = os.path.join(TOP, BUILD)
SANITIZED = os.path.basename(BUILD.rstrip("/")) in ("asan", "tsan") or \
    os.environ.get("CFHOOKD_SANITIZED") == "1"
# Sanitized binaries start and run slower: wait longer, assert the same things.
SLOW = 3 if SANITIZED else 1
VECTORS = os.path.join(TOP, "tests", "vectors", "cashfree-webhooks.json")
SECRET = "cfhookd-TEST-ONLY-secret-0001"
# cfhookctl shows times in $TZ: every test reads UTC unless it sets a zone.
os.environ.pop("TZ", None)
STORE = os.environ.get("CFHOOK_E2E_STORE", "sqlite")
PG_BASE = os.environ.get("CFHOOK_TEST_PG")
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|"
                          r"SUMMARY: UndefinedBehaviorSanitizer")


class Skip(Exception):
    """Raise to skip a test; the message is its reason."""


def pg_mode():
    """True when this run keeps the daemons' events in PostgreSQL."""
    return STORE == "postgresql"


def sqlite_only(why):
    """Skips a test that is about SQLite's files when the run is PostgreSQL's."""
    if pg_mode():
        raise Skip("SQLite only: " + why)


def psql(uri, script, variables=None):
    """Runs a psql script (stdin, so :'var' interpolation works); returns stdout."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", uri]
    for k, v in (variables or {}).items():
        cmd += ["-v", "%s=%s" % (k, v)]
    p = subprocess.run(cmd, input=script.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError("psql: %s\n%s" % (p.stderr.decode(errors="replace"), script))
    return p.stdout.decode()


class Row(tuple):
    """A result row as sqlite3.Row reads: by position or by column name."""

    def __new__(cls, names, values):
        r = super().__new__(cls, values)
        r._names = list(names)
        return r

    def __getitem__(self, k):
        if isinstance(k, str):
            return tuple.__getitem__(self, self._names.index(k))
        return tuple.__getitem__(self, k)

    def keys(self):
        return list(self._names)


def _pg_value(name, v):
    """bytea comes as \\x...: the body's bytes, as str when they are UTF-8 text
    (as SQLite hands back a TEXT body), else bytes."""
    if name == "body" and isinstance(v, str) and v.startswith("\\x"):
        raw = bytes.fromhex(v[2:])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
        return raw if "\0" in text else text
    return v


class PgDatabase:
    """A fresh database on the test server, dropped by drop()."""
    seq = 0

    def __init__(self):
        if not PG_BASE:
            raise Skip("no PostgreSQL server (CFHOOK_TEST_PG is unset; tests/run starts one)")
        PgDatabase.seq += 1
        self.name = "e2e_%d_%d_%d" % (os.getpid(), PgDatabase.seq, int(time.time() * 1000) % 100000)
        psql(PG_BASE, "CREATE DATABASE %s;" % self.name)
        self.uri = PG_BASE + ("&" if "?" in PG_BASE else "?") + "dbname=" + self.name

    @staticmethod
    def _bind(sql, args):
        """sqlite3's ? placeholders as psql variables (outside quotes)."""
        out, variables, n, quoted = [], {}, 0, False
        for c in sql:
            if c == "'":
                quoted = not quoted
            if c == "?" and not quoted:
                v = args[n]
                n += 1
                if v is None:
                    out.append("NULL")
                else:
                    variables["p%d" % n] = v if isinstance(v, str) else str(v)
                    out.append(":'p%d'" % n)
                continue
            out.append(c)
        return "".join(out), variables

    def rows(self, sql, args=()):
        q, variables = self._bind(sql.strip().rstrip(";"), args)
        out = psql(self.uri, "SELECT coalesce(json_agg(q), '[]'::json) FROM (%s) AS q;" % q,
                   variables)
        result = []
        for obj in json.loads(out or "[]"):
            names = list(obj.keys())
            result.append(Row(names, [_pg_value(k, obj[k]) for k in names]))
        return result

    def execute(self, sql, args=()):
        q, variables = self._bind(sql.strip().rstrip(";"), args)
        psql(self.uri, q + ";", variables)

    def drop(self):
        psql(PG_BASE, "DROP DATABASE IF EXISTS %s WITH (FORCE);" % self.name)


class _PgCursor:
    def __init__(self, rows):
        self._rows = rows

    def fetchall(self):
        return self._rows

    def fetchone(self):
        return self._rows[0] if self._rows else None


class _PgConnection:
    """What tests use of a sqlite3 connection (execute, fetch, commit, close)."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql, args=()):
        word = sql.lstrip().split(None, 1)[0].upper()
        if word in ("SELECT", "WITH"):
            return _PgCursor(self.db.rows(sql, args))
        self.db.execute(sql, args)
        return _PgCursor([])

    def commit(self):
        pass

    def close(self):
        pass


def binary(name="cfhookd"):
    return os.path.join(BUILD, name)


def load_vectors():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


def now_ms():
    return int(time.time() * 1000)


def sign_json(secret, ts, body):
    """Base64(HMAC-SHA256(secret, ts || body)) as Cashfree signs (spec section 2)."""
    if isinstance(body, str):
        body = body.encode()
    mac = hmac.new(secret.encode(), str(ts).encode() + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def form_signing_string(pairs):
    items = [(k.encode(), v.encode()) for k, v in pairs if k != "signature"]
    items.sort(key=lambda kv: kv[0])
    return b"".join(v for _, v in items)


def sign_form(secret, pairs):
    """Signature of the form scheme (spec section 5.2) over decoded values."""
    mac = hmac.new(secret.encode(), form_signing_string(pairs), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def encode_form(pairs):
    return urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote_plus)


def signed_form_body(secret, pairs):
    pairs = [(k, v) for k, v in pairs if k != "signature"]
    return encode_form(pairs + [("signature", sign_form(secret, pairs))]).encode()


def payment_body(cf_payment_id="1453002795", order_id="order_1", type_="PAYMENT_SUCCESS_WEBHOOK",
                 status="SUCCESS", amount="1", numeric_id=False):
    """A compact PAYMENT_*_WEBHOOK body with the given ids (amount is a raw JSON token)."""
    pid = cf_payment_id if numeric_id else json.dumps(cf_payment_id)
    return ('{"data":{"order":{"order_id":%s,"order_amount":2,"order_currency":"INR"},'
            '"payment":{"cf_payment_id":%s,"payment_status":"%s","payment_amount":%s,'
            '"payment_currency":"INR"}},"event_time":"2023-08-01T11:16:10+05:30",'
            '"type":"%s"}' % (json.dumps(order_id), pid, status, amount, type_)).encode()


def accepted_inodes(port):
    """Client port -> inode of the daemon's end, for the TCP connections to
    127.0.0.1:port the daemon has accepted (a queued one has inode 0 and is
    left out), read from /proc without touching them."""
    out = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[9] != "0":
                out[int(fields[2].split(":")[1], 16)] = int(fields[9])
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Notify:
    """A NOTIFY_SOCKET the test owns: records every sd_notify datagram."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []          # (monotonic time, text)
        self.cond = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopped:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.messages.append((time.monotonic(), data.decode(errors="replace")))
                self.cond.notify_all()

    def wait_for(self, pred, timeout):
        """Waits until pred(text) holds for a message; returns that text or None."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for _, text in self.messages[seen:]:
                    if pred(text):
                        return text
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def count(self, needle):
        with self.cond:
            return sum(1 for _, t in self.messages if needle in t)

    def times(self, needle):
        with self.cond:
            return [ts for ts, t in self.messages if needle in t]

    def close(self):
        self.stopped = True
        self.sock.close()


class Daemon:
    """One cfhookd process in its own temp dir.

    config: dict of extra/overriding config keys (values written as given).
    secrets: lines of the secret file (None: no secret_file key at all).
    listen: "tcp" (127.0.0.1 on a free port) or "unix" (tmp/http.sock).
    preexec: called in the child before cfhookd is executed (limits, say).
    """

    def __init__(self, config=None, secrets=(SECRET,), listen="tcp", env=None,
                 start=True, tmp=None, args=None, preexec=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="cfhookd-e2e-")
        self.own_tmp = tmp is None
        self.secrets = list(secrets) if secrets is not None else []
        self.secret_path = os.path.join(self.tmp, "secret")
        self.db_path = os.path.join(self.tmp, "events.db")
        # PostgreSQL: a database of its own, unless the test names one
        # (a second instance on the first one's database).
        self.pg = None
        given = (config or {}).get("database")
        if pg_mode() and given is None:
            self.pg = PgDatabase()
            self.db_path = self.pg.uri
        elif given is not None and given.startswith("postgres"):
            self.db_path = given
        self.conf_path = os.path.join(self.tmp, "cfhookd.conf")
        self.log_path = os.path.join(self.tmp, "cfhookd.log")
        self.unix_path = None
        self.port = None
        self.proc = None
        self.notify = None
        self.extra_env = dict(env or {})
        self.args = list(args or [])
        self.preexec = preexec
        conf = {
            "webhook_path": "/webhooks/cashfree",
            "database": self.db_path,
            "forward": "none",
            "log_level": "debug",
        }
        if listen == "unix":
            self.unix_path = os.path.join(self.tmp, "http.sock")
            conf["listen"] = "unix:" + self.unix_path
        else:
            self.port = free_port()
            conf["listen"] = "127.0.0.1:%d" % self.port
        if secrets is not None:
            self.write_secrets(self.secrets)
            conf["secret_file"] = self.secret_path
        conf.update(config or {})
        self.config = conf
        self.write_config()
        if start:
            self.start()

    # -- files ---------------------------------------------------------------
    def write_secrets(self, lines, mode=0o600):
        with open(self.secret_path, "w") as f:
            f.write("".join(s + "\n" for s in lines))
        os.chmod(self.secret_path, mode)
        self.secrets = list(lines)

    def write_config(self):
        with open(self.conf_path, "w") as f:
            for k, v in self.config.items():
                if v is not None:
                    f.write("%s = %s\n" % (k, v))

    # -- process -------------------------------------------------------------
    def start(self, wait=True, timeout=None):
        if self.notify is None:
            self.notify = Notify(os.path.join(self.tmp, "notify.sock"))
        with self.notify.cond:
            self.notify.messages.clear()    # READY=1 must come from this run
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC",
                            "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY")}
        env["NOTIFY_SOCKET"] = self.notify.path
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.update(self.extra_env)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary(), "-c", self.conf_path] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, env=env, cwd=self.tmp,
                                     preexec_fn=self.preexec)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=None):
        timeout = timeout or 15 * SLOW
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.notify.wait_for(lambda t: "READY=1" in t, 0.1):
                return
            if self.proc.poll() is not None:
                raise AssertionError("cfhookd exited %d before READY=1:\n%s"
                                     % (self.proc.returncode, self.log()))
        raise AssertionError("no READY=1 within %ss:\n%s" % (timeout, self.log()))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=None):
        return self.proc.wait(timeout or 20 * SLOW)

    def stop(self, sig=signal.SIGTERM, expect_rc=0, timeout=None):
        """Stops the daemon; returns its exit status. Fails on a sanitizer report."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout or 20 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("cfhookd did not exit after %s:\n%s" % (sig, self.log()[-4000:]))
        self.logf.close()
        self.proc = None
        self.check_log_clean()
        if expect_rc is not None and sig != signal.SIGKILL:
            assert rc == expect_rc, "exit %d, expected %d:\n%s" % (rc, expect_rc, self.log()[-4000:])
        return rc

    def kill(self):
        """SIGKILL: simulates a crash."""
        return self.stop(sig=signal.SIGKILL, expect_rc=None)

    def restart(self):
        self.stop()
        return self.start()

    def check_log_clean(self):
        text = self.log()
        m = SANITIZER_RE.search(text)
        assert m is None, "sanitizer report in the log:\n" + text[max(0, m.start() - 2000):][:8000]
        for s in self.secrets:
            assert s not in text, "a secret appears in the log"

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10):
        """Waits until the log matches the regex; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            m = rx.search(self.log())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("log never matched %r:\n%s" % (pattern, self.log()[-4000:]))
            time.sleep(0.05)

    def close(self):
        try:
            if self.proc is not None:
                self.stop()
        finally:
            if self.notify is not None:
                self.notify.close()
            if self.pg is not None and os.environ.get("CFHOOKD_KEEP") != "1":
                self.pg.drop()
                self.pg = None
            if self.own_tmp and os.environ.get("CFHOOKD_KEEP") != "1":
                shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self.proc is not None:
            # keep the original failure; still stop and clean up
            try:
                self.proc.kill()
                self.proc.wait()
            except OSError:
                pass
            self.proc = None
            print("---- cfhookd log (tail) ----\n" + self.log()[-3000:])
        self.close()
        return False

    # -- HTTP ----------------------------------------------------------------
    def connection(self, timeout=10):
        if self.unix_path:
            return UnixHTTPConnection(self.unix_path, timeout * SLOW)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def post(self, body, headers=None, path=None):
        return self.request("POST", path or self.config["webhook_path"], body, headers)

    def json_headers(self, body, secret=None, ts=None, extra=None):
        ts = str(now_ms()) if ts is None else str(ts)
        h = {"Content-Type": "application/json",
             "x-webhook-timestamp": ts,
             "x-webhook-signature": sign_json(secret or self.secrets[0], ts, body),
             "x-webhook-version": "2023-08-01",
             "x-webhook-attempt": "1"}
        h.update(extra or {})
        return h

    def raw_post(self, body, keep_alive=True):
        """The bytes of a signed JSON POST of body to webhook_path, for a
        test that writes to the socket itself."""
        head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (
            self.config["webhook_path"], len(body))
        head += "".join("%s: %s\r\n" % kv for kv in self.json_headers(body).items())
        if not keep_alive:
            head += "Connection: close\r\n"
        return head.encode() + b"\r\n" + body

    def post_json(self, body, secret=None, ts=None, extra=None):
        if isinstance(body, str):
            body = body.encode()
        return self.post(body, self.json_headers(body, secret, ts, extra))

    def post_form(self, pairs, secret=None, extra=None, field=False):
        """A form signed with the x-webhook-* headers over its raw bytes (what
        the daemon accepts by default), or with field=True by its `signature`
        field (spec 5.2; needs form_field_signature = on)."""
        secret = secret or self.secrets[0]
        if field:
            body = signed_form_body(secret, pairs)
            h = {"Content-Type": "application/x-www-form-urlencoded"}
        else:
            body = encode_form(pairs).encode()
            ts = str(now_ms())
            h = {"Content-Type": "application/x-www-form-urlencoded",
                 "x-webhook-timestamp": ts, "x-webhook-signature": sign_json(secret, ts, body)}
        h.update(extra or {})
        return self.post(body, h)

    def post_vector(self, case, fresh_ts=False):
        """Sends a vector case exactly as recorded (headers and body bytes)."""
        h = dict(case["headers"])
        if fresh_ts and "x-webhook-timestamp" in h and case["signing"].get("algo") == "json-header-hmac":
            raise ValueError("re-signing is the test's job")
        return self.post(case["body"].encode(), h)

    # -- database ------------------------------------------------------------
    def uses_pg(self):
        return self.db_path.startswith("postgres")

    def db(self):
        if self.uses_pg():
            return _PgConnection(self._pgdb())
        con = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=10)
        con.row_factory = sqlite3.Row
        return con

    def _pgdb(self):
        if self.pg is not None:
            return self.pg
        db = PgDatabase.__new__(PgDatabase)
        db.uri = self.db_path
        return db

    def rows(self, sql, args=()):
        if self.uses_pg():
            return self._pgdb().rows(sql, args)
        con = self.db()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def execute(self, sql, args=()):
        """A write on the store from the test (standing in for another process)."""
        if self.uses_pg():
            self._pgdb().execute(sql, args)
            return
        con = sqlite3.connect(self.db_path, isolation_level=None, timeout=10)
        try:
            con.execute(sql, args)
        finally:
            con.close()

    def schema_version(self):
        """PRAGMA user_version of SQLite, the schema_version row of PostgreSQL."""
        if self.uses_pg():
            return self.rows("SELECT version FROM schema_version")[0][0]
        return self.rows("PRAGMA user_version")[0][0]

    def event(self, event_key):
        r = self.rows("SELECT * FROM events WHERE event_key = ?", (event_key,))
        return r[0] if r else None
