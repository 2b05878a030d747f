"""Forwarding (DESIGN "Forwarding"): real hooks and a real unix-socket consumer
fed by the real daemon. argv/environment/stdin, no duplicate forwards, retries
with backoff, timeouts that kill the hook's whole process group, dead events
and cfhookctl replay, a consumer that comes up late, redelivery after SIGKILL,
shell metacharacters, the concurrency limit and per-order ordering."""

import ctypes
import json
import os
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import harness
from harness import Daemon, SLOW, Skip, binary, payment_body, sqlite_only

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HOOK_ENV_KEYS = {"PATH", "CFHOOK_EVENT_ID", "CFHOOK_EVENT_KEY", "CFHOOK_TYPE",
                 "CFHOOK_CF_PAYMENT_ID", "CFHOOK_ORDER_ID", "CFHOOK_PAYMENT_STATUS",
                 "CFHOOK_AMOUNT", "CFHOOK_CURRENCY", "CFHOOK_ATTEMPT",
                 "CFHOOK_LINK_STATUS", "CFHOOK_LINK_AMOUNT_PAID", "CFHOOK_ORDER_STATE",
                 "CFHOOK_ORDER_PAID_NOW", "CFHOOK_ORDER_ATTENTION"}


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def write_hook(tmp, name, body):
    """An executable /bin/sh script in tmp; returns its path."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def recorder_hook(tmp, extra=""):
    """Records each run in out/RUN/{argv,env,stdin} (RUN = event id and
    attempt), and one line "key attempt" in calls; then runs `extra`."""
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    return write_hook(tmp, "hook.sh", r"""
r=%(out)s/$CFHOOK_EVENT_ID.$CFHOOK_ATTEMPT
mkdir -p "$r"
printf '%%s\0' "$0" "$@" > "$r/argv"
cat /proc/$$/environ > "$r/env"
cat > "$r/stdin"
echo "$CFHOOK_EVENT_KEY $CFHOOK_ATTEMPT" >> %(out)s/calls
echo "hook saw $CFHOOK_EVENT_KEY"
%(extra)s
""" % {"out": out, "extra": extra})


def run_dir(tmp, event_id, attempt):
    return os.path.join(tmp, "out", "%d.%d" % (event_id, attempt))


def read_run(tmp, event_id, attempt):
    d = run_dir(tmp, event_id, attempt)
    with open(os.path.join(d, "argv"), "rb") as f:
        argv = f.read().split(b"\0")[:-1]
    with open(os.path.join(d, "env"), "rb") as f:
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0")[:-1])
    with open(os.path.join(d, "stdin"), "rb") as f:
        stdin = f.read()
    return argv, env, stdin


def calls(tmp):
    try:
        with open(os.path.join(tmp, "out", "calls")) as f:
            return [line.split() for line in f.read().splitlines()]
    except FileNotFoundError:
        return []


def state(d, event_id):
    r = d.rows("SELECT forward_state FROM events WHERE id = ?", (event_id,))
    return r[0][0] if r else None


def wait_state(d, event_id, want, timeout=10):
    wait_until(lambda: state(d, event_id) == want, timeout,
               "event %d to be %s (is %s)" % (event_id, want, state(d, event_id)))


def start_forwarding(d, target):
    """Points the (not yet started) daemon at `target` and starts it."""
    d.config["forward"] = target
    d.write_config()
    d.start()


def post_ok(d, body):
    r = d.post_json(body)
    assert r.status == 200, r
    return r


def test_hook_env_pairs_reach_the_hook_and_follow_a_reload():
    """hook_env (DESIGN "Configuration"): the operator's NAME=value pairs are
    added after cfhookd's own variables; a reload applies new ones."""
    with Daemon(start=False) as d:
        hook = recorder_hook(d.tmp)
        d.config["hook_env"] = "SHOP_URL=https://shop.example/api?x=1 SHOP_TOKEN_FILE=/etc/t"
        start_forwarding(d, "hook:" + hook)
        post_ok(d, payment_body("4101", order_id="env_1"))
        wait_state(d, 1, "done")
        _, env, _ = read_run(d.tmp, 1, 1)
        assert set(k.decode() for k in env) == HOOK_ENV_KEYS | {"SHOP_URL", "SHOP_TOKEN_FILE"}
        assert env[b"SHOP_URL"] == b"https://shop.example/api?x=1"
        assert env[b"SHOP_TOKEN_FILE"] == b"/etc/t"
        d.config["hook_env"] = "SHOP_URL=https://other.example"
        d.write_config()
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"reload: done")
        # The forwarder takes the new settings once what it had claimed is
        # delivered; it says so, and deliveries claimed after that use them.
        d.wait_log(r"forward: now hook:")
        post_ok(d, payment_body("4102", order_id="env_2"))
        wait_state(d, 2, "done")
        _, env, _ = read_run(d.tmp, 2, 1)
        assert env[b"SHOP_URL"] == b"https://other.example"
        assert b"SHOP_TOKEN_FILE" not in env
        assert "kept as running" not in d.log()
    # a bad pair stops the start with the line that holds it
    with Daemon(start=False) as d:
        d.config["hook_env"] = "CFHOOK_AMOUNT=0"
        d.write_config()
        p = subprocess.run([binary(), "-c", d.conf_path, "--check"], capture_output=True)
        assert p.returncode == 1 and b"hook_env: expected NAME=value" in p.stderr, p


def test_hook_gets_argv_env_and_envelope():
    with Daemon(start=False) as d:
        hook = recorder_hook(d.tmp)
        start_forwarding(d, "hook:" + hook)
        body = payment_body("1453002795", order_id="order_1", amount="170.00")
        post_ok(d, body)
        wait_state(d, 1, "done")
        argv, env, stdin = read_run(d.tmp, 1, 1)
        assert argv == [hook.encode(), b"PAYMENT_SUCCESS_WEBHOOK", b"1453002795", b"order_1"]
        assert set(k.decode() for k in env) == HOOK_ENV_KEYS, env
        assert env[b"PATH"] == b"/usr/local/bin:/usr/bin:/bin"
        assert env[b"CFHOOK_EVENT_ID"] == b"1"
        assert env[b"CFHOOK_EVENT_KEY"] == b"PAYMENT_SUCCESS_WEBHOOK:1453002795"
        assert env[b"CFHOOK_TYPE"] == b"PAYMENT_SUCCESS_WEBHOOK"
        assert env[b"CFHOOK_CF_PAYMENT_ID"] == b"1453002795"
        assert env[b"CFHOOK_ORDER_ID"] == b"order_1"
        assert env[b"CFHOOK_PAYMENT_STATUS"] == b"SUCCESS"
        assert env[b"CFHOOK_AMOUNT"] == b"170.00"
        assert env[b"CFHOOK_CURRENCY"] == b"INR"
        assert env[b"CFHOOK_ATTEMPT"] == b"1"
        # the order as this event left it: paid now, 170.00 against an
        # order_amount of 2; no link here
        assert env[b"CFHOOK_ORDER_STATE"] == b"PAID"
        assert env[b"CFHOOK_ORDER_PAID_NOW"] == b"1"
        assert env[b"CFHOOK_ORDER_ATTENTION"] == b"amount_mismatch"
        assert env[b"CFHOOK_LINK_STATUS"] == b"" and env[b"CFHOOK_LINK_AMOUNT_PAID"] == b""
        # stdin: exactly one line of JSON
        assert stdin.endswith(b"\n") and stdin.count(b"\n") == 1
        e = json.loads(stdin)
        assert list(e) == ["id", "event_key", "type", "cf_payment_id", "order_id",
                           "payment_status", "amount", "currency", "received_at",
                           "attempt", "format", "idempotency_key", "webhook_version",
                           "order_state", "order_paid_now", "order_attention",
                           "order_amount", "order_currency", "payload"]
        assert e["webhook_version"] == "2023-08-01" and e["idempotency_key"] is None
        assert e["order_state"] == "PAID" and e["order_paid_now"] is True
        assert e["order_attention"] == "amount_mismatch"
        assert e["order_amount"] == "2" and e["order_currency"] == "INR"
        assert e["id"] == 1 and e["attempt"] == 1 and e["format"] == "json"
        assert e["event_key"] == "PAYMENT_SUCCESS_WEBHOOK:1453002795"
        assert e["order_id"] == "order_1" and e["amount"] == "170.00"
        assert RFC3339_MS.match(e["received_at"]), e["received_at"]
        assert e["payload"] == json.loads(body)
        # the payload keeps the number text Cashfree sent
        assert b'"payment_amount":170.00' in stdin
        row = d.event("PAYMENT_SUCCESS_WEBHOOK:1453002795")
        assert row["forward_attempts"] == 1 and row["forwarded_at"] is not None
        assert row["last_error"] is None
        log = d.rows("SELECT attempt, ok, error, finished_at FROM forward_log")
        assert [tuple(r)[:3] for r in log] == [(1, 1, None)] and log[0][3] is not None
        d.wait_log(r"hook\[\d+\]: hook saw PAYMENT_SUCCESS_WEBHOOK:1453002795")
        d.wait_log(r"forward: delivered PAYMENT_SUCCESS_WEBHOOK:1453002795 attempt 1")


def test_form_event_reaches_hook_as_form_payload():
    with Daemon(start=False) as d:
        hook = recorder_hook(d.tmp)
        start_forwarding(d, "hook:" + hook)
        pairs = [("type", "PAYMENT_LINK_EVENT"), ("link_id", "link_1"),
                 ("link_status", "PAID"), ("order_id", "ord & co"),
                 ("transaction_id", "1021301"), ("transaction_status", "SUCCESS"),
                 ("order_amount", "200.00"), ("link_currency", "INR")]
        assert d.post_form(pairs).status == 200
        wait_state(d, 1, "done")
        argv, env, stdin = read_run(d.tmp, 1, 1)
        assert argv[1:] == [b"PAYMENT_LINK_EVENT", b"1021301", b"ord & co"]
        e = json.loads(stdin)
        assert e["format"] == "form"
        assert e["payload"] == dict(pairs)          # no signature field
        assert e["amount"] == "200.00" and e["currency"] == "INR"
        # a link event's own fields, from the form as intake read it
        assert e["link_id"] == "link_1" and e["link_status"] == "PAID"
        assert e["link_amount_paid"] is None and e["link_amount"] is None
        assert env[b"CFHOOK_LINK_STATUS"] == b"PAID"
        assert env[b"CFHOOK_LINK_AMOUNT_PAID"] == b""
        assert e["order_state"] == "PAID" and e["order_paid_now"] is True
        assert e["order_attention"] is None
        assert env[b"CFHOOK_ORDER_STATE"] == b"PAID" and env[b"CFHOOK_ORDER_PAID_NOW"] == b"1"
        assert env[b"CFHOOK_ORDER_ATTENTION"] == b""


def test_duplicate_never_forwarded_twice():
    with Daemon(start=False) as d:
        hook = recorder_hook(d.tmp)
        start_forwarding(d, "hook:" + hook)
        body = payment_body("5001", order_id="dup")
        for _ in range(3):
            post_ok(d, body)
        wait_state(d, 1, "done")
        post_ok(d, body)                  # again after it was delivered
        post_ok(d, payment_body("5002", order_id="dup"))
        wait_state(d, 2, "done")
        time.sleep(1.2)                   # the dispatcher's idle round passed
        assert calls(d.tmp) == [["PAYMENT_SUCCESS_WEBHOOK:5001", "1"],
                                ["PAYMENT_SUCCESS_WEBHOOK:5002", "1"]]
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:5001")["deliveries"] == 4


def test_failing_hook_retried_with_backoff_until_it_succeeds():
    with Daemon(config={"forward_backoff": 1}, start=False) as d:
        hook = recorder_hook(d.tmp, """
echo "$CFHOOK_ATTEMPT $(date +%s.%N)" >> {tmp}/times
[ "$CFHOOK_ATTEMPT" -ge 3 ] || {{ echo "not yet" >&2; exit 3; }}
""".format(tmp=d.tmp))
        start_forwarding(d, "hook:" + hook)
        post_ok(d, payment_body("6001", order_id="retry"))
        # last_error carries the hook's last stderr line (3 a.m. diagnostics)
        wait_until(lambda: d.event("PAYMENT_SUCCESS_WEBHOOK:6001")["last_error"]
                   == "exit status 3: not yet", 5, "the first failure")
        wait_state(d, 1, "done", timeout=15)
        with open(os.path.join(d.tmp, "times")) as f:
            times = [line.split() for line in f.read().splitlines()]
        assert [t[0] for t in times] == ["1", "2", "3"]
        t = [float(x[1]) for x in times]
        assert t[1] - t[0] >= 0.9, t          # backoff 1 s
        assert t[2] - t[1] >= 1.9, t          # then 2 s
        row = d.event("PAYMENT_SUCCESS_WEBHOOK:6001")
        assert row["forward_attempts"] == 3 and row["last_error"] is None
        log = [tuple(r) for r in d.rows("SELECT attempt, ok, error FROM forward_log ORDER BY id")]
        assert log == [(1, 0, "exit status 3: not yet"), (2, 0, "exit status 3: not yet"),
                       (3, 1, None)]
        d.wait_log(r"attempt 1 failed: exit status 3: not yet; will retry in 1 s")
        d.wait_log(r"<4>hook\[\d+\]: not yet")     # stderr is a warning
        d.wait_log(r"<6>hook\[\d+\]: hook saw PAYMENT_SUCCESS_WEBHOOK:6001")


def pid_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
        return st in ("Z", "X")
    except FileNotFoundError:
        return True


def test_hanging_hook_and_grandchild_killed_then_retried():
    with Daemon(config={"forward_backoff": 1, "forward_timeout": 1}, start=False) as d:
        hook = recorder_hook(d.tmp, """
if [ "$CFHOOK_ATTEMPT" = 1 ]; then
  sh -c 'echo $$ > {tmp}/gc.pid; trap "" TERM; while :; do sleep 1; done' &
  sleep 60
fi
""".format(tmp=d.tmp))
        start_forwarding(d, "hook:" + hook)
        t0 = time.monotonic()
        post_ok(d, payment_body("7001", order_id="hang"))
        wait_until(lambda: os.path.exists(os.path.join(d.tmp, "gc.pid")), 5, "the grandchild")
        wait_state(d, 1, "done", timeout=15)
        took = time.monotonic() - t0
        assert took < 1 + 2 + 1 + 4 * SLOW, took   # timeout + grace + backoff + slack
        with open(os.path.join(d.tmp, "gc.pid")) as f:
            gc = int(f.read())
        wait_until(lambda: pid_gone(gc), 3, "the grandchild to be killed")
        log = [tuple(r) for r in d.rows("SELECT attempt, ok, error FROM forward_log ORDER BY id")]
        assert log == [(1, 0, "timeout after 1 s"), (2, 1, None)]
        d.wait_log(r"hook\[\d+\]: past the timeout; killing its process group")


def test_dead_after_max_attempts_then_cfhookctl_replay_delivers():
    with Daemon(config={"forward_backoff": 1, "forward_max_attempts": 2}, start=False) as d:
        flag = os.path.join(d.tmp, "fixed")
        hook = recorder_hook(d.tmp, "[ -e %s ] || exit 4\n" % flag)
        start_forwarding(d, "hook:" + hook)
        post_ok(d, payment_body("8001", order_id="dead-1"))
        post_ok(d, payment_body("8002", order_id="dead-1"))   # waits behind 8001
        wait_state(d, 1, "dead", timeout=10)
        row = d.event("PAYMENT_SUCCESS_WEBHOOK:8001")
        assert row["forward_attempts"] == 2 and row["last_error"] == "exit status 4"
        d.wait_log(r"forward: PAYMENT_SUCCESS_WEBHOOK:8001 attempt 2 failed: exit status 4; "
                   r"no attempts left, the event is dead")
        # dead releases its order: the next event goes out (and fails too)
        wait_until(lambda: d.event("PAYMENT_SUCCESS_WEBHOOK:8002")["forward_attempts"] >= 1,
                   5, "the order's next event")
        open(flag, "w").close()
        ctl = binary("cfhookctl")
        assert os.path.exists(ctl), "build/cfhookctl is missing: cannot test replay"
        p = subprocess.run([ctl, "-d", d.db_path, "replay", "1"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        assert p.returncode == 0, p
        wait_state(d, 1, "done", timeout=5)
        # the attempt number keeps counting across the replay (a repeat)
        assert ["PAYMENT_SUCCESS_WEBHOOK:8001", "3"] in calls(d.tmp)[2:], calls(d.tmp)
        wait_state(d, 2, "done", timeout=10)


def test_replay_of_dead_event_gets_a_new_series_and_attempts_keep_counting():
    """max_attempts=2: dead after attempts 1, 2; a replay gives 2 fresh
    tries numbered 3, 4 (env and envelope), then it is dead again."""
    with Daemon(config={"forward_backoff": 1, "forward_max_attempts": 2}, start=False) as d:
        hook = recorder_hook(d.tmp, "exit 5\n")
        start_forwarding(d, "hook:" + hook)
        post_ok(d, payment_body("8101", order_id="again-1"))
        wait_state(d, 1, "dead", timeout=10)
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:8101")["forward_attempts"] == 2
        p = subprocess.run([binary("cfhookctl"), "-d", d.db_path, "replay", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        assert p.returncode == 0, p
        wait_until(lambda: state(d, 1) == "dead"
                   and d.event("PAYMENT_SUCCESS_WEBHOOK:8101")["forward_attempts"] == 4,
                   10, "two fresh tries after the replay")
        assert calls(d.tmp) == [["PAYMENT_SUCCESS_WEBHOOK:8101", str(n)] for n in (1, 2, 3, 4)]
        for n in (3, 4):
            argv, env, stdin = read_run(d.tmp, 1, n)
            assert env[b"CFHOOK_ATTEMPT"] == str(n).encode()
            assert json.loads(stdin)["attempt"] == n
        log = [tuple(r) for r in d.rows("SELECT attempt, ok FROM forward_log ORDER BY id")]
        assert log == [(1, 0), (2, 0), (3, 0), (4, 0)], log
        # the new series backs off from forward_backoff again (1 s, not 2 s)
        d.wait_log(r"forward: PAYMENT_SUCCESS_WEBHOOK:8101 attempt 3 failed: exit status 5; "
                   r"will retry in 1 s")
        d.wait_log(r"forward: PAYMENT_SUCCESS_WEBHOOK:8101 attempt 4 failed: exit status 5; "
                   r"no attempts left, the event is dead")
        time.sleep(1.5 * SLOW)                      # and nothing more goes out
        assert len(calls(d.tmp)) == 4


class Consumer:
    """A unix-socket consumer in a thread: one line in, one answer out.
    answer(envelope) returns the line(s) to send back (default "OK")."""

    def __init__(self, path, answer=None):
        self.path = path
        self.answer = answer or (lambda e: "OK")
        self.got = []
        self.connections = 0
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.stopped = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        f = c.makefile("rb")
        c.settimeout(30)
        try:
            for line in f:
                e = json.loads(line)
                with self.lock:
                    self.got.append(e)
                c.sendall(self.answer(e).encode() + b"\n")
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def close(self):
        self.stopped = True
        self.srv.close()
        os.unlink(self.path)


def test_unix_consumer_down_then_up_receives_everything_in_order():
    with Daemon(config={"forward_backoff": 1, "forward_concurrency": 4}, start=False) as d:
        path = os.path.join(d.tmp, "consumer.sock")
        start_forwarding(d, "unix:" + path)
        plan = [("A", "9001"), ("B", "9002"), ("A", "9003"), ("C", "9004"),
                ("A", "9005"), ("B", "9006"), ("C", "9007"), ("A", "9008")]
        for order, pid in plan:
            post_ok(d, payment_body(pid, order_id=order))
        wait_until(lambda: (d.event("PAYMENT_SUCCESS_WEBHOOK:9001")["last_error"] or "")
                   .startswith("connect: "), 5, "a refused connection")
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:9003")["forward_attempts"] == 0  # waits behind 9001
        c = Consumer(path)
        try:
            wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                       == len(plan), 15, "every event delivered")
            with c.lock:
                got = list(c.got)
                conns = c.connections
        finally:
            c.close()
        assert sorted(e["cf_payment_id"] for e in got) == sorted(p for _, p in plan)
        for order in "ABC":
            want = [p for o, p in plan if o == order]
            assert [e["cf_payment_id"] for e in got if e["order_id"] == order] == want
        assert conns == 1, conns          # one connection, kept
        first = d.event("PAYMENT_SUCCESS_WEBHOOK:9001")
        assert first["forward_attempts"] >= 2
        attempts = [e["attempt"] for e in got if e["cf_payment_id"] == "9001"]
        assert attempts == [first["forward_attempts"]]


def test_unix_consumer_wrong_answer_is_retried():
    with Daemon(config={"forward_backoff": 1}, start=False) as d:
        path = os.path.join(d.tmp, "consumer.sock")
        c = Consumer(path, answer=lambda e: "OK" if e["attempt"] >= 2 else "NO")
        try:
            start_forwarding(d, "unix:" + path)
            post_ok(d, payment_body("9101", order_id="nope"))
            wait_state(d, 1, "done", timeout=10)
        finally:
            c.close()
        assert [e["attempt"] for e in c.got] == [1, 2]
        log = [tuple(r) for r in d.rows("SELECT attempt, ok, error FROM forward_log ORDER BY id")]
        assert log == [(1, 0, "consumer answered 'NO'"), (2, 1, None)]


class SequentialConsumer:
    """The consumer anybody writes first: one connection at a time, one line
    read, handled (`delay` seconds), answered, then the next line. Records
    (id, attempt, cf_payment_id, order_id) of every envelope read."""

    def __init__(self, path, delay=0.0, answer=None, die_after=None):
        self.path = path
        self.delay = delay
        self.answer = answer or (lambda e: "OK %d" % e["id"])
        self.die_after = die_after      # lines; then close everything
        self.got = []
        self.connections = 0
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            if self._serve(c):
                self.close()            # "killed": nothing more is answered
                return

    def _serve(self, c):
        """Returns True when the consumer dies."""
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return False
                e = json.loads(line)
                with self.lock:
                    self.got.append(e)
                    n = len(self.got)
                if self.die_after is not None and n >= self.die_after:
                    return True
                time.sleep(self.delay)
                c.sendall(self.answer(e).encode() + b"\n")
        except (OSError, ValueError):
            return False
        finally:
            f.close()
            c.close()

    def close(self):
        if self.stopped:
            return
        self.stopped = True
        self.srv.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def order_plan(orders, per_order, base):
    """(order, cf_payment_id) in an interleaved receipt order."""
    return [("ord-%d" % (i % orders), str(base + i)) for i in range(orders * per_order)]


def assert_per_order_fifo(got, plan):
    """Per order, envelopes arrive in receipt order: a later event never
    before an earlier one (repeats of an event may follow it)."""
    for order in sorted({o for o, _ in plan}):
        want = [p for o, p in plan if o == order]
        seen = [e["cf_payment_id"] for e in got if e["order_id"] == order]
        firsts = []
        for p in seen:
            if p not in firsts:
                firsts.append(p)
        assert firsts == want, (order, seen, want)
        pos = [want.index(p) for p in seen]
        assert pos == sorted(pos), (order, seen)


def test_sequential_consumer_gets_everything_once_in_order_without_timeouts():
    """A consumer that serves one connection at a time and answers line by
    line (taking 30 ms each) used to block cfhookd's other connections into
    timeouts and repeats; with one pipelined connection every event arrives
    exactly once, per order in receipt order, and no attempt times out."""
    with Daemon(config={"forward_concurrency": 4, "forward_timeout": 2}, start=False) as d:
        path = os.path.join(d.tmp, "seq.sock")
        c = SequentialConsumer(path, delay=0.03)
        plan = order_plan(6, 8, 9700)
        try:
            start_forwarding(d, "unix:" + path)
            for order, pid in plan:
                post_ok(d, payment_body(pid, order_id=order))
            wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                       == len(plan), 30, "every event delivered")
        finally:
            c.close()
        with c.lock:
            got = list(c.got)
        assert sorted(e["cf_payment_id"] for e in got) == sorted(p for _, p in plan)
        assert all(e["attempt"] == 1 for e in got), got
        assert_per_order_fifo(got, plan)
        assert c.connections == 1, c.connections
        log = d.rows("SELECT ok, error FROM forward_log")
        assert [tuple(r) for r in log] == [(1, None)] * len(plan), log
        assert d.rows("SELECT count(*) FROM events WHERE last_error IS NOT NULL")[0][0] == 0


def test_consumer_killed_mid_pipeline_loses_nothing_and_keeps_order():
    """The consumer dies with envelopes on the connection unanswered. The
    one it was working on failed (backoff), those behind it are
    'unanswered' (sent again at once, in order); after it is back every
    event is delivered, per order never out of receipt order."""
    with Daemon(config={"forward_concurrency": 4, "forward_backoff": 1,
                        "forward_timeout": 5}, start=False) as d:
        path = os.path.join(d.tmp, "dies.sock")
        first = SequentialConsumer(path, delay=0.02, die_after=10)
        plan = order_plan(5, 6, 9800)
        start_forwarding(d, "unix:" + path)
        for order, pid in plan:
            post_ok(d, payment_body(pid, order_id=order))
        wait_until(lambda: first.stopped, 10, "the first consumer to die")
        wait_until(lambda: d.rows("SELECT count(*) FROM forward_log WHERE ok = 0")[0][0] > 0,
                   10, "the cut-off attempts recorded")
        second = SequentialConsumer(path)
        try:
            wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                       == len(plan), 30, "every event delivered")
        finally:
            second.close()
        got = first.got + second.got
        assert_per_order_fifo(got, plan)
        assert {e["cf_payment_id"] for e in second.got} >= \
            {p for _, p in plan} - {e["cf_payment_id"] for e in first.got[:9]}
        errors = [r[0] for r in d.rows("SELECT error FROM forward_log WHERE ok = 0")]
        assert any(e.startswith("not answered: the connection was closed after event")
                   for e in errors), errors
        assert any(e == "consumer closed the connection" for e in errors), errors
        # every attempt is one forward_log row, numbered 1, 2, ...
        for r in d.rows("SELECT id, forward_attempts FROM events"):
            att = [x[0] for x in d.rows("SELECT attempt FROM forward_log WHERE event_id = ?"
                                        " ORDER BY id", (r[0],))]
            assert att == list(range(1, r[1] + 1)), (r[0], att)


def test_ok_with_the_id_is_checked():
    """OK <id> naming the envelope is accepted; another id is not: that
    attempt fails and the event goes out again."""
    with Daemon(config={"forward_backoff": 1}, start=False) as d:
        path = os.path.join(d.tmp, "ids.sock")

        def answer(e):
            if e["cf_payment_id"] == "9901" and e["attempt"] == 1:
                return "OK %d" % (e["id"] + 1000)
            return "OK %d" % e["id"]
        c = SequentialConsumer(path, answer=answer)
        try:
            start_forwarding(d, "unix:" + path)
            post_ok(d, payment_body("9900", order_id="id-a"))
            post_ok(d, payment_body("9901", order_id="id-b"))
            wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                       == 2, 10, "both delivered")
        finally:
            c.close()
        row = d.event("PAYMENT_SUCCESS_WEBHOOK:9901")
        assert row["forward_attempts"] == 2
        log = [tuple(r) for r in d.rows("SELECT attempt, ok, error FROM forward_log"
                                        " WHERE event_id = ? ORDER BY id", (row["id"],))]
        assert log == [(1, 0, "consumer answered 'OK %d' to event %d" % (row["id"] + 1000,
                                                                         row["id"])),
                       (2, 1, None)], log


def test_a_late_second_ok_never_marks_a_refused_event_done():
    """A consumer that answers the first attempt of every even event twice
    ("OK <id>", then the same 20 ms late) and refuses the first attempt of
    every odd one: the stray OK arrives while the next envelope waits for
    its answer. Answered with ids, it cannot pass for that answer (without
    ids it would mark a refused event done). No event is marked done by an
    attempt the consumer refused."""
    with Daemon(config={"forward_backoff": 1, "forward_concurrency": 4}, start=False) as d:
        path = os.path.join(d.tmp, "twice.sock")
        said = {}

        def answer(e):
            n = int(e["cf_payment_id"])
            if n % 2 == 1 and e["attempt"] == 1:
                said[(e["id"], e["attempt"])] = "NO"
                return "NO"
            said[(e["id"], e["attempt"])] = "OK"
            ok = "OK %d" % e["id"]
            if n % 2 == 0 and e["attempt"] == 1:
                threading.Timer(0.02, late_ok, (ok,)).start()
            return ok

        # 50 ms per envelope: the late OK comes while the next one waits
        c = SequentialConsumer(path, delay=0.05, answer=answer)
        conns = []
        orig = c._serve

        def serve(conn):
            conns.append(conn)
            return orig(conn)

        def late_ok(ok):
            try:
                conns[-1].sendall(ok.encode() + b"\n")
            except OSError:
                pass
        c._serve = serve
        try:
            start_forwarding(d, "unix:" + path)
            for i in range(20):
                post_ok(d, payment_body(str(9920 + i), order_id="tw-%d" % i))
            wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                       == 20, 30, "every event delivered")
        finally:
            c.close()
        for event_id, attempt in d.rows("SELECT event_id, attempt FROM forward_log WHERE ok = 1"):
            assert said.get((event_id, attempt)) == "OK", (event_id, attempt, said)
        # the stray answers did arrive, and were caught by their id
        assert d.rows("SELECT count(*) FROM forward_log WHERE error LIKE"
                      " 'consumer answered ''OK %'' to event %'")[0][0] > 0


def test_sigkill_during_delivery_redelivers_as_attempt_2():
    with Daemon(start=False) as d:
        fifo = os.path.join(d.tmp, "gate")
        os.mkfifo(fifo)
        started = os.path.join(d.tmp, "started")
        hook = recorder_hook(d.tmp, """
if [ "$CFHOOK_ATTEMPT" = 1 ]; then echo $$ > {started}; cat {fifo} > /dev/null; fi
""".format(started=started, fifo=fifo))
        start_forwarding(d, "hook:" + hook)
        post_ok(d, payment_body("9201", order_id="crash"))
        wait_until(lambda: os.path.exists(started) and os.path.getsize(started) > 0, 5,
                   "the hook to start")
        with open(started) as f:
            first = int(f.read())
        d.kill()
        # the daemon's death takes its hook along (hook.c's guard): the first
        # run, blocked on the fifo, does not live on beside the next one
        wait_until(lambda: pid_gone(first), 5, "the first hook to die with the daemon")
        row = d.event("PAYMENT_SUCCESS_WEBHOOK:9201")
        assert row["forward_state"] == "pending" and row["forward_attempts"] == 1
        d.start()
        wait_state(d, 1, "done")
        argv, env, stdin = read_run(d.tmp, 1, 2)
        assert env[b"CFHOOK_ATTEMPT"] == b"2" and json.loads(stdin)["attempt"] == 2
        log = [tuple(r) for r in d.rows("SELECT attempt, ok, error FROM forward_log ORDER BY id")]
        assert log == [(1, None, "interrupted by restart"), (2, 1, None)]


def _kill_with_claims_queued(d, lose_marks=False):
    """Eight events of eight orders for a hook at concurrency 1 whose first
    run blocks: all eight are claimed (their attempts counted), one has
    started. Then SIGKILL and a restart with the hook let through."""
    gate = os.path.join(d.tmp, "gate")
    hook = recorder_hook(d.tmp, """
while [ ! -e {gate} ]; do sleep 0.05; done
""".format(gate=gate))
    d.config.update({"forward_concurrency": 1, "forward_timeout": 60})
    start_forwarding(d, "hook:" + hook)
    for i in range(8):
        post_ok(d, payment_body(str(9250 + i), order_id="queued-%d" % i))
    wait_until(lambda: len(calls(d.tmp)) == 1 and d.rows(
        "SELECT count(*) FROM events WHERE forward_attempts = 1")[0][0] == 8, 10,
        "one hook running and all eight claimed")
    d.kill()
    if lose_marks:
        os.unlink(d.db_path + ".inflight")
    open(gate, "w").close()
    d.start()
    wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
               == 8, 10, "all eight delivered")
    return [(int(a[0].split(":")[1]), int(a[1])) for a in calls(d.tmp)]


def test_sigkill_counts_only_the_deliveries_that_had_started():
    """A round claims ahead of the workers; a SIGKILL must not count the
    claims that were still queued as attempts: they go out as attempt 1,
    and only the delivery that was under way as attempt 2."""
    sqlite_only("a PostgreSQL outbox keeps no record of which claims started: "
                "every unfinished claim counts as an attempt")
    with Daemon(start=False) as d:
        seen = _kill_with_claims_queued(d)
        assert seen[0] == (9250, 1) and sorted(seen[1:]) == sorted(
            [(9250, 2)] + [(9250 + i, 1) for i in range(1, 8)]), seen
        log = [tuple(r) for r in d.rows(
            "SELECT e.cf_payment_id, l.attempt, l.ok, l.error FROM forward_log l"
            " JOIN events e ON e.id = l.event_id ORDER BY l.id")]
        assert log[0] == ("9250", 1, None, "interrupted by restart"), log
        assert sorted(log[1:]) == sorted([("9250", 2, 1, None)] +
                                         [(str(9250 + i), 1, 1, None) for i in range(1, 8)]), log
        assert [r[0] for r in d.rows("SELECT forward_attempts FROM events ORDER BY id")] == \
            [2, 1, 1, 1, 1, 1, 1, 1]
        d.wait_log(r"forward: 1 delivery was cut short by a restart; those events go out "
                   r"again\n")
        d.wait_log(r"forward: 7 claims had not started when the last run ended; undone")


def test_without_the_record_every_claim_counts():
    """No record of which claims started (here deleted; after a reboot it
    is not trusted): every unfinished claim counts, as the safe side."""
    sqlite_only("the record of started claims is SQLite's (DATABASE.inflight)")
    with Daemon(start=False) as d:
        seen = _kill_with_claims_queued(d, lose_marks=True)
        assert seen[0] == (9250, 1) and sorted(seen[1:]) == [(9250 + i, 2) for i in range(8)], seen
        d.wait_log(r"forward: 8 deliveries were cut short by a restart; those events go out "
                   r"again \(each counts as an attempt: no record of which had started\)")


def test_sigkill_counts_only_the_envelopes_that_were_sent():
    """unix: with forward_concurrency 2 a consumer that does not answer has
    two envelopes; the six others claimed behind them were never sent."""
    sqlite_only("a PostgreSQL outbox keeps no record of which claims started")
    with Daemon(start=False) as d:
        sock = os.path.join(d.tmp, "consumer.sock")
        silent = SequentialConsumer(sock, delay=60)
        d.config.update({"forward_concurrency": 2, "forward_timeout": 60})
        start_forwarding(d, "unix:" + sock)
        for i in range(8):
            post_ok(d, payment_body(str(9270 + i), order_id="sent-%d" % i))
        wait_until(lambda: len(silent.got) == 1 and d.rows(
            "SELECT count(*) FROM events WHERE forward_attempts = 1")[0][0] == 8, 10,
            "the first envelope read and all eight claimed")
        time.sleep(0.2 * SLOW)  # the second is in the socket, unread
        d.kill()
        silent.close()
        answering = Consumer(sock)
        try:
            d.start()
            wait_until(lambda: d.rows("SELECT count(*) FROM events"
                                      " WHERE forward_state = 'done'")[0][0] == 8, 10,
                       "all eight delivered")
            got = sorted((int(e["cf_payment_id"]), e["attempt"]) for e in answering.got)
        finally:
            answering.close()
        assert got == [(9270, 2), (9271, 2)] + [(9270 + i, 1) for i in range(2, 8)], got


def test_forward_log_times_are_the_deliveries_own():
    """Claims wait in the queue (here up to 0.6 s for a hook that takes
    0.3 s at concurrency 1) and outcomes are recorded in batches: the log's
    started_at and finished_at, and forwarded_at, must still be when each
    delivery went out and came back, not when it was claimed or recorded."""
    with Daemon(start=False) as d:
        times = os.path.join(d.tmp, "times")
        hook = write_hook(d.tmp, "hook.sh", """
s=$(date +%s%3N)
cat > /dev/null
sleep 0.3
echo "$CFHOOK_EVENT_KEY $s $(date +%s%3N)" >> {times}
""".format(times=times))
        d.config.update({"forward_concurrency": 1})
        start_forwarding(d, "hook:" + hook)
        for i in range(3):
            post_ok(d, payment_body(str(9290 + i), order_id="timed-%d" % i))
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                   == 3, 10, "three deliveries")
        with open(times) as f:
            seen = {k: (int(a), int(b)) for k, a, b in (line.split() for line in f)}
        slack = 150 * SLOW
        for r in d.rows("SELECT e.event_key, l.started_at, l.finished_at, e.forwarded_at"
                        " FROM forward_log l JOIN events e ON e.id = l.event_id"):
            hook_start, hook_end = seen[r[0]]
            r = tuple(r)
            assert r[1] <= hook_start <= r[1] + slack, (r, hook_start)
            assert hook_end <= r[2] <= hook_end + slack, (r, hook_end)
            assert r[3] == r[2], r


def test_sigterm_during_delivery_interrupts_and_redelivers():
    with Daemon(config={"forward_timeout": 60}, start=False) as d:
        started = os.path.join(d.tmp, "started")
        hook = recorder_hook(d.tmp, """
if [ "$CFHOOK_ATTEMPT" = 1 ]; then echo $$ > {started}; sleep 60; fi
""".format(started=started))
        start_forwarding(d, "hook:" + hook)
        post_ok(d, payment_body("9301", order_id="term"))
        wait_until(lambda: os.path.exists(started) and os.path.getsize(started) > 0, 5,
                   "the hook to start")
        t0 = time.monotonic()
        d.stop()                          # SIGTERM, exit 0
        assert time.monotonic() - t0 < 3 + 2 + 3 * SLOW
        with open(started) as f:
            assert pid_gone(int(f.read()))
        log = [tuple(r) for r in d.rows("SELECT attempt, ok, error FROM forward_log ORDER BY id")]
        assert log == [(1, None, "interrupted by shutdown")]
        assert state(d, 1) == "pending"
        d.start()
        wait_state(d, 1, "done")
        assert calls(d.tmp)[-1] == ["PAYMENT_SUCCESS_WEBHOOK:9301", "2"]


def test_sigterm_while_a_claim_waits_for_the_lock_starts_no_new_delivery():
    """SIGTERM arrives while the dispatcher is inside a claim (here: waiting
    for a write lock someone else holds). The claim it completes after the
    stop began must not start a hook that the drain no longer waits for:
    cfhookd still exits within the drain budget, and the claim is given back
    (no attempt was made: no log row, the count as before), the event
    pending."""
    sqlite_only("it holds SQLite's write lock; a PostgreSQL claim never waits for "
                "another's lock (FOR UPDATE SKIP LOCKED)")
    with Daemon(config={"forward_timeout": 60, "forward_backoff": 2}, start=False) as d:
        started = os.path.join(d.tmp, "started2")
        hook = recorder_hook(d.tmp, """
[ "$CFHOOK_ATTEMPT" = 1 ] && exit 1
touch {started}; sleep 30
""".format(started=started))
        start_forwarding(d, "hook:" + hook)
        post_ok(d, payment_body("9351", order_id="lock"))
        wait_until(lambda: d.rows("SELECT count(*) FROM forward_log WHERE ok = 0")[0][0] == 1,
                   5, "the first attempt to fail")
        due_ms = d.event("PAYMENT_SUCCESS_WEBHOOK:9351")["next_attempt_at"]
        con = sqlite3.connect(d.db_path, isolation_level=None, timeout=5)
        try:
            con.execute("BEGIN IMMEDIATE")          # the dispatcher's claim will wait
            while time.time() * 1000 < due_ms + 500:
                time.sleep(0.05)
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
        finally:
            con.rollback()
            con.close()
        d.stop()
        assert time.monotonic() - t0 < 3 + 2 + 3 * SLOW, time.monotonic() - t0
        assert not os.path.exists(started), "a delivery started after the stop began"
        log = [tuple(r) for r in d.rows("SELECT attempt, ok, error FROM forward_log ORDER BY id")]
        assert log == [(1, 0, "exit status 1")], log
        assert state(d, 1) == "pending"
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:9351")["forward_attempts"] == 1


def test_shell_metacharacters_reach_the_hook_byte_exact():
    with Daemon(start=False) as d:
        pwned = os.path.join(d.tmp, "pwned")
        hook = recorder_hook(d.tmp)
        start_forwarding(d, "hook:" + hook)
        order = "o'1\"; touch %s; $(touch %s) `touch %s` | & > < * ? ~ \\ \n line2 \t" \
            % (pwned, pwned, pwned)
        post_ok(d, payment_body("9401", order_id=order))
        wait_state(d, 1, "done")
        argv, env, stdin = read_run(d.tmp, 1, 1)
        assert argv[3] == order.encode()
        assert env[b"CFHOOK_ORDER_ID"] == order.encode()
        assert json.loads(stdin)["order_id"] == order
        assert stdin.count(b"\n") == 1
        assert not os.path.exists(pwned), "a shell ran"


def test_concurrent_hooks_never_exceed_the_limit_and_orders_stay_serial():
    with Daemon(config={"forward_concurrency": 2}, start=False) as d:
        spans = os.path.join(d.tmp, "spans")
        os.makedirs(spans)
        hook = write_hook(d.tmp, "hook.sh", """
s=$(date +%s%N)
sleep 0.4
echo "$s $(date +%s%N) $CFHOOK_ORDER_ID $CFHOOK_CF_PAYMENT_ID" > {spans}/$CFHOOK_EVENT_ID
""".format(spans=spans))
        start_forwarding(d, "hook:" + hook)
        plan = [("X", "9501"), ("Y", "9502"), ("X", "9503"), ("Z", "9504"),
                ("W", "9505"), ("X", "9506"), ("V", "9507"), ("U", "9508")]
        for order, pid in plan:
            post_ok(d, payment_body(pid, order_id=order))
        wait_until(lambda: len(os.listdir(spans)) == len(plan), 20, "every hook run")
        runs = []
        for name in os.listdir(spans):
            with open(os.path.join(spans, name)) as f:
                s, e, order, pid = f.read().split()
            runs.append((int(s), int(e), order, pid))
        points = sorted([(s, 1) for s, _, _, _ in runs] + [(e, -1) for _, e, _, _ in runs],
                        key=lambda p: (p[0], p[1]))
        cur = peak = 0
        for _, delta in points:
            cur += delta
            peak = max(peak, cur)
        assert peak <= 2, peak
        assert peak == 2, "no two hooks ever overlapped: %r" % runs
        xs = sorted((r for r in runs if r[2] == "X"), key=lambda r: r[0])
        assert [r[3] for r in xs] == ["9501", "9503", "9506"]
        for a, b in zip(xs, xs[1:]):
            assert a[1] <= b[0], "two deliveries for one order overlapped"


def test_one_orders_events_follow_each_other_without_waits():
    """Thirty events of one order: each may go only once the one before is
    recorded, and then it goes at once (not at the dispatcher's next idle
    second: that took 29 s)."""
    with Daemon(start=False) as d:
        hook = write_hook(d.tmp, "hook.sh", "exit 0\n")
        start_forwarding(d, "hook:" + hook)
        t0 = time.monotonic()
        for i in range(30):
            post_ok(d, payment_body(str(9560 + i), order_id="chain"))
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                   == 30, 40, "every event delivered")
        took = time.monotonic() - t0
        assert took < 5 * SLOW, took
        seq = [r[0] for r in d.rows("SELECT event_id FROM forward_log ORDER BY id")]
        assert seq == list(range(1, 31)), seq
        # Each event was claimed as soon as it was committed: no attempt
        # is logged as starting before its event was received.
        early = d.rows("SELECT e.id, e.received_at, f.started_at FROM forward_log f"
                       " JOIN events e ON e.id = f.event_id WHERE f.started_at < e.received_at")
        assert early == [], early



def test_an_idle_forwarder_does_not_poll():
    """Once everything is delivered the dispatcher waits for news (a
    commit, a heartbeat a second): it once looked again every millisecond
    for the orders its last deliveries released, about 5% of a CPU with
    nothing to do."""
    with Daemon(start=False) as d:
        hook = write_hook(d.tmp, "hook.sh", "exit 0\n")
        start_forwarding(d, "hook:" + hook)
        for i in range(5):
            post_ok(d, payment_body(str(9570 + i), order_id="idle-%d" % i))
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                   == 5, 20, "every event delivered")
        time.sleep(0.5)
        tick = os.sysconf("SC_CLK_TCK")

        def cpu():
            with open("/proc/%d/stat" % d.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick

        before = cpu()
        time.sleep(3)
        used = cpu() - before
        assert used < 0.05 * SLOW, "%.2f s of CPU in 3 s idle" % used

def _main_thread_wakes(envelope_pad):
    """The main thread's voluntary context switches while 60 events go to a
    hook that exits without reading stdin."""
    with Daemon(start=False) as d:
        hook = write_hook(d.tmp, "hook.sh", "exit 0\n")
        start_forwarding(d, "hook:" + hook)
        time.sleep(0.3)

        def main_switches():
            with open("/proc/%d/task/%d/status" % (d.proc.pid, d.proc.pid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        return int(line.split()[1])
            raise AssertionError("no voluntary_ctxt_switches")

        before = main_switches()
        n = 60
        for i in range(n):
            body = payment_body(str(9700 + i), order_id="quiet-%d" % i)
            if envelope_pad:
                body = body.replace(b'"event_time"', b'"pad":"%s","event_time"' % (b"x" * envelope_pad))
            post_ok(d, body)
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                   == n, 20, "every event delivered")
        return main_switches() - before, n


def test_hook_exits_do_not_wake_the_main_thread():
    """A hook's exit sends SIGCHLD to the daemon. The worker threads block
    every signal, so it used to go to the main thread, which woke (about
    12 us of CPU and two context switches a delivery) only to drop it."""
    woken, n = _main_thread_wakes(0)
    # its own wake-ups: a status line every 10 s, the writer's reopen
    # eventfd; none of them per delivery
    assert woken < 6, "the main thread woke %d times for %d hooks" % (woken, n)


def test_hooks_that_never_read_stdin_do_not_wake_the_main_thread():
    """An envelope larger than a pipe holds (64 KiB) cannot be written before
    the hook exits, so every delivery's write ends in EPIPE and raises
    SIGPIPE. Queued, even to a thread that blocks it, each one woke the main
    thread's signalfd; the daemon ignores SIGPIPE, so it must be discarded."""
    woken, n = _main_thread_wakes(100000)
    assert woken < 6, "the main thread woke %d times for %d hooks" % (woken, n)


def test_reload_switches_the_target():
    with Daemon(config={"forward_backoff": 1}, start=False) as d:
        bad = write_hook(d.tmp, "bad.sh", "exit 5\n")
        good = recorder_hook(d.tmp)
        start_forwarding(d, "hook:" + bad)
        post_ok(d, payment_body("9601", order_id="reload"))
        wait_until(lambda: d.event("PAYMENT_SUCCESS_WEBHOOK:9601")["last_error"] == "exit status 5",
                   5, "a failure with the old hook")
        d.config.update({"forward": "hook:" + good})
        d.write_config()
        d.proc.send_signal(signal.SIGHUP)
        wait_state(d, 1, "done", timeout=10)
        assert calls(d.tmp) and calls(d.tmp)[0][0] == "PAYMENT_SUCCESS_WEBHOOK:9601"
        d.wait_log(r"forward: now hook:%s" % re.escape(good))


def test_hook_fds_and_stdin_close():
    """Only stdin, stdout and stderr are open in the hook (no descriptor of the
    daemon leaks), and its stdin ends."""
    with Daemon(start=False) as d:
        out = os.path.join(d.tmp, "fds")
        hook = write_hook(d.tmp, "hook.sh", """
cat > /dev/null
exec python3 -c 'import os
for fd in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        print(fd, os.readlink("/proc/self/fd/" + fd))
    except OSError:
        pass' > {out}
""".format(out=out))
        start_forwarding(d, "hook:" + hook)
        post_ok(d, payment_body("9701"))
        wait_state(d, 1, "done")
        with open(out) as f:
            fds = [line.split(" ", 1) for line in f.read().splitlines()]
        assert [fd for fd, _ in fds[:3]] == ["0", "1", "2"], fds
        assert fds[0][1].startswith("pipe:") and fds[2][1].startswith("pipe:"), fds
        # beyond stdio only the descriptor listdir() itself opened
        for _, target in fds[3:]:
            assert re.match(r"^/proc/\d+/fd$", target), fds
        assert len(fds) <= 4, fds


def children_of(pid):
    """pid -> comm of the processes whose parent is pid."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out[int(name)] = comm
    return out


def test_the_guard_has_a_title_of_its_own():
    """The hook guard runs beside the daemon as cfhook-guard: ps shows that
    name, and neither `pgrep -x cfhookd` nor `pgrep cfhookd` takes it for
    the daemon. It goes when the daemon is killed."""
    for tool in ("ps", "pgrep"):
        if subprocess.run(["which", tool], stdout=subprocess.DEVNULL).returncode != 0:
            raise Skip("%s is not installed (procps)" % tool)
    with Daemon(start=False) as d:
        hook = write_hook(d.tmp, "hook.sh", "exit 0\n")
        start_forwarding(d, "hook:" + hook)
        guards = wait_until(lambda: [p for p, c in children_of(d.proc.pid).items()
                                     if c == "cfhook-guard"], 5, "the guard")
        assert len(guards) == 1, guards
        guard = guards[0]
        ps = subprocess.run(["ps", "-o", "comm=,args=", "-p", str(guard)],
                            stdout=subprocess.PIPE, text=True).stdout.split()
        assert ps == ["cfhook-guard", "cfhook-guard"], ps
        for args in (["pgrep", "-x", "cfhookd"], ["pgrep", "cfhookd"]):
            found = [int(x) for x in subprocess.run(args, stdout=subprocess.PIPE,
                                                    text=True).stdout.split()]
            assert d.proc.pid in found and guard not in found, (args, found)
        post_ok(d, payment_body("9990", order_id="guard"))
        wait_state(d, 1, "done")
        d.kill()
        wait_until(lambda: pid_gone(guard), 5, "the guard to leave with the daemon")


def thread_names(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            out.append(f.read().strip())
    return sorted(out)


def names_once_started(pid, want):
    """The thread names once each name of want (name: count) is there at
    least that often: a new thread carries the process's name until it has
    run far enough to name itself."""
    seen = []

    def ready():
        seen[:] = thread_names(pid)
        return all(seen.count(k) >= n for k, n in want.items())
    try:
        wait_until(ready, 5, "the named threads")
    except AssertionError:
        raise AssertionError("threads %s, wanted %s" % (seen, want))
    return seen


def test_threads_are_named_for_their_work():
    """top -H, ps -L and perf tell the daemon's threads apart: the writer,
    the forwarder's round and its workers (per target), the accepting and
    timeout threads; the process keeps its own name."""
    want = {"writer": 1, "fwd-round": 1, "http-accept": 1, "http-timeouts": 1}
    with Daemon(config={"forward_concurrency": 2}, start=False) as d:
        hook = write_hook(d.tmp, "hook.sh", "exit 0\n")
        start_forwarding(d, "hook:" + hook)
        names = names_once_started(d.proc.pid, dict(want, **{"fwd-hook": 2}))
        # exactly: no thread named twice, none left unnamed but the main
        # one (the process's name) and a sanitizer's own
        for name, n in dict(want, **{"fwd-hook": 2}).items():
            assert names.count(name) == n, (name, names)
        assert set(names) <= set(want) | {"fwd-hook", "MHD-worker", "cfhookd"}, names
        with open("/proc/%d/task/%d/comm" % (d.proc.pid, d.proc.pid)) as f:
            assert f.read().strip() == "cfhookd"
    with Daemon(config={"forward_concurrency": 4}, start=False) as d:
        start_forwarding(d, "unix:" + os.path.join(d.tmp, "consumer.sock"))
        names = names_once_started(d.proc.pid, dict(want, **{"fwd-unix": 1}))
        assert names.count("fwd-unix") == 1 and "fwd-hook" not in names, names


def thread_nices(pid):
    """(name, nice value) of each of pid's threads, from /proc."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            st = f.read()
        rest = st[st.rindex(")") + 2:].split()   # from field 3, the state
        out.append((st[st.index("(") + 1:st.rindex(")")], int(rest[16])))
    return sorted(out)


def may_raise_priority():
    """Whether this process holds CAP_SYS_NICE (a child started without a
    preexec holds it too)."""
    with open("/proc/self/status") as f:
        caps = [l for l in f if l.startswith("CapEff:")][0].split()[1]
    return (int(caps, 16) >> 23) & 1 == 1


def limited_nice(limit):
    """A preexec: RLIMIT_NICE at limit, and no CAP_SYS_NICE after the exec
    (dropped from the bounding set, where that is ours to drop)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec():
        libc.prctl(24, 23, 0, 0, 0)   # PR_CAPBSET_DROP, CAP_SYS_NICE
        resource.setrlimit(resource.RLIMIT_NICE, (limit, limit))
    return preexec


INTAKE = ("writer", "http-accept", "MHD-worker")


def intake_nice_settles(d, want):
    """The nice values once intake's threads have raised themselves; every
    other thread keeps the process's. Each HTTP worker raises itself as it
    serves its first request, and libmicrohttpd picks a connection's
    worker by its fd number: connections four at a time, held open
    together, until both workers have served one."""
    base = dict(thread_nices(d.proc.pid))["cfhookd"]

    def settled():
        conns = [d.connection() for _ in range(4)]
        for c in conns:
            c.request("GET", "/healthz")
        for c in conns:
            c.getresponse().read()
            c.close()
        return all(v == want(base) for n, v in thread_nices(d.proc.pid) if n in INTAKE)
    try:
        wait_until(settled, 5, "intake's threads at nice %d" % want(base))
    except AssertionError:
        raise AssertionError("threads %s, daemon %d" % (thread_nices(d.proc.pid), base))
    nices = thread_nices(d.proc.pid)
    assert sorted(n for n, _ in nices if n in INTAKE) == \
        ["MHD-worker", "MHD-worker", "http-accept", "writer"], nices
    others = [(n, v) for n, v in nices if n not in INTAKE]
    assert others and all(v == base for _, v in others), (base, others)
    return base


def test_intake_runs_ahead_of_the_daemons_other_threads():
    """Every webhook waits for intake's threads (the writer's commit above
    all): they run 10 nice levels ahead of the forwarder where they may,
    and keep their level (the writer saying so) where nothing is allowed."""
    with Daemon(config={"forward_concurrency": 2}, start=False) as d:
        start_forwarding(d, "hook:" + write_hook(d.tmp, "hook.sh", "exit 0\n"))
        names_once_started(d.proc.pid, {"writer": 1, "fwd-hook": 2})
        if may_raise_priority():
            intake_nice_settles(d, lambda base: max(base - 10, -20))
        else:
            limit = resource.getrlimit(resource.RLIMIT_NICE)[0]
            floor = -20 if limit >= 40 else 20 - max(limit, 1)
            intake_nice_settles(d, lambda base: max(base - 10, floor) if floor < base else base)
    # no RLIMIT_NICE, no capability: intake keeps the daemon's level
    with Daemon(preexec=limited_nice(0)) as d:
        intake_nice_settles(d, lambda base: base)
        assert "RLIMIT_NICE allows no more (systemd: LimitNICE=)" in d.log()


def test_intake_goes_as_far_ahead_as_rlimit_nice_allows():
    """LimitNICE=-5 in a unit (RLIMIT_NICE 25) without CAP_SYS_NICE:
    intake goes to -5 and no further, and says it wanted more; a hook gets
    no RLIMIT_NICE."""
    if resource.getrlimit(resource.RLIMIT_NICE)[1] < 25:
        raise Skip("RLIMIT_NICE's hard limit is below 25 and may not be raised here")
    with Daemon(preexec=limited_nice(25), start=False) as d:
        limits = os.path.join(d.tmp, "limits")
        start_forwarding(d, "hook:" + write_hook(d.tmp, "hook.sh",
                                                  "cat /proc/$$/limits > %s\n" % limits))
        base = intake_nice_settles(d, lambda base: max(base - 10, -5) if base > -5 else base)
        if base - 10 < -5 < base:
            assert "RLIMIT_NICE allows no more" in d.log()
        # hooks get none of it: they cannot raise themselves above intake
        post_ok(d, payment_body())
        wait_until(lambda: os.path.exists(limits) and os.path.getsize(limits) > 0, 10, "the hook")
        with open(limits) as f:
            row = [l for l in f if l.startswith("Max nice priority")][0].split()
        assert row[3:5] == ["0", "0"], row


def test_trivial_hooks_draw_no_group_warning():
    """Hooks that leave nothing behind never get "left processes in its
    group" (it came now and then, from another delivery's fork holding the
    pipe)."""
    with Daemon(config={"forward_concurrency": 4}, start=False) as d:
        hook = write_hook(d.tmp, "hook.sh", "exit 0\n")
        start_forwarding(d, "hook:" + hook)
        for i in range(60):
            post_ok(d, payment_body(str(9800000 + i), order_id="quiet-%d" % (i % 7)))
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'")[0][0]
                   == 60, 30, "every event delivered")
        assert "left processes" not in d.log()
        assert d.rows("SELECT count(*) FROM forward_log WHERE ok = 1")[0][0] == 60


def test_a_setsid_child_holding_stdout_does_not_hold_the_delivery():
    """A hook that starts a daemon of its own (setsid, stdout inherited) and
    exits: the attempt ends with the hook, not after a grace period and a
    wait for EOF (3.3 s each), and nothing is killed or warned about."""
    with Daemon(start=False) as d:
        pidfile = os.path.join(d.tmp, "bg.pid")
        hook = write_hook(d.tmp, "hook.sh", """
setsid sh -c 'echo $$ > {p}; exec sleep 30' &
while [ ! -s {p} ]; do sleep 0.01; done
echo started
""".format(p=pidfile))
        start_forwarding(d, "hook:" + hook)
        try:
            post_ok(d, payment_body("9991", order_id="setsid"))
            wait_state(d, 1, "done")
            started, finished = d.rows("SELECT started_at, finished_at FROM forward_log")[0]
            # the old cost was the kill grace plus an EOF wait, 3.3 s; the
            # bound is not scaled by SLOW so that it still tells them apart
            assert finished - started < 3000, finished - started
            assert "left processes" not in d.log()
            with open(pidfile) as f:
                bg = int(f.read())
            assert not pid_gone(bg)         # outside the group: not ours to kill
        finally:
            if os.path.exists(pidfile):
                with open(pidfile) as f:
                    try:
                        os.kill(int(f.read()), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
