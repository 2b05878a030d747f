"""cfhookctl against a database the running daemon fills: status, list, show,
replay, prune, with and without --json; usage errors; prune tombstones."""

import base64
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import threading
import time

from harness import SANITIZER_RE, SLOW, Daemon, Skip, binary, payment_body, sqlite_only

# Bytes a shop may put in an order id: quotes, $(), a newline, an ESC sequence.
NASTY_ORDER = "o'\"$(touch /tmp/pwned)`id`;\n\x1b[31mred"


def ctl(d, *args, db=False, expect=None, stdin=None):
    """Runs cfhookctl -c CONFIG ARGS (or -d DB); returns (rc, stdout bytes, stderr text)."""
    where = ["-d", d.db_path] if db else ["-c", d.conf_path]
    p = subprocess.run([binary("cfhookctl")] + where + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30 * SLOW, input=stdin)
    err = p.stderr.decode(errors="replace")
    assert SANITIZER_RE.search(err) is None, err
    if expect is not None:
        assert p.returncode == expect, (args, p.returncode, p.stdout[-2000:], err)
    return p.returncode, p.stdout, err


def ctl_json(d, *args):
    rc, out, err = ctl(d, "--json", *args, expect=0)
    return json.loads(out)


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def write_hook(d, script):
    """An executable hook in the daemon's temp dir; returns its path."""
    path = os.path.join(d.tmp, "hook.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + script)
    os.chmod(path, stat.S_IRWXU)
    return path


def fill(d):
    """Five events over three orders; returns {event_key: id}."""
    bodies = [
        payment_body("5001", order_id="order-a", amount="100.00"),
        payment_body("5002", order_id="order-b", type_="PAYMENT_FAILED_WEBHOOK", status="FAILED"),
        payment_body("5003", order_id="order-b", amount='"250.50"'),
        payment_body("5004", order_id=NASTY_ORDER),
        payment_body("5005", order_id="order-c", type_="PAYMENT_USER_DROPPED_WEBHOOK",
                     status="USER_DROPPED"),
    ]
    for b in bodies:
        r = d.post_json(b)
        assert r.status == 200, r
    return {r["event_key"]: r["id"] for r in d.rows("SELECT id, event_key FROM events")}


def test_status_counts_while_running():
    with Daemon() as d:
        ids = fill(d)
        s = ctl_json(d, "status")
        assert s["events"] == 5 and s["done"] == 5 and s["pending"] == 0 and s["dead"] == 0
        assert s["received_today"] == 5
        assert s["oldest_pending"] is None
        assert s["last_received"]["id"] == max(ids.values())
        assert s["last_received"]["event_key"] == "PAYMENT_USER_DROPPED_WEBHOOK:5005"
        assert s["forward"] == "none" and s["database"] == d.db_path
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00\.000Z", s["today_utc_since"])
        rc, out, err = ctl(d, "status", expect=0)
        text = out.decode()
        assert re.search(r"events\s+5\n", text), text
        assert re.search(r"done\s+5\n", text), text
        assert "last received      #%d PAYMENT_USER_DROPPED_WEBHOOK:5005" % ids[
            "PAYMENT_USER_DROPPED_WEBHOOK:5005"] in text, text
        # -d gives the same numbers; --json may come first or last
        rc, out, err = ctl(d, "status", "--json", db=True, expect=0)
        assert json.loads(out)["events"] == 5


def test_list_filters_and_columns():
    with Daemon() as d:
        ids = fill(d)
        rows = ctl_json(d, "list")
        assert [r["id"] for r in rows] == sorted(ids.values(), reverse=True)
        assert [r["id"] for r in ctl_json(d, "list", "--order", "order-b")] == [
            ids["PAYMENT_SUCCESS_WEBHOOK:5003"], ids["PAYMENT_FAILED_WEBHOOK:5002"]]
        assert [r["event_key"] for r in ctl_json(d, "list", "--type", "PAYMENT_FAILED_WEBHOOK")] \
            == ["PAYMENT_FAILED_WEBHOOK:5002"]
        assert len(ctl_json(d, "list", "--limit", "2")) == 2
        assert ctl_json(d, "list", "--state", "pending") == []
        assert len(ctl_json(d, "list", "--state=done")) == 5
        assert ctl_json(d, "list", "--since", "2999-01-01") == []
        assert len(ctl_json(d, "list", "--since", "2020-01-01T00:00:00Z")) == 5
        assert len(ctl_json(d, "list", "--since", str(int(time.time()) - 3600))) == 5
        nasty = ctl_json(d, "list", "--order", NASTY_ORDER)
        assert len(nasty) == 1 and nasty[0]["order_id"] == NASTY_ORDER
        r = [x for x in rows if x["event_key"] == "PAYMENT_SUCCESS_WEBHOOK:5003"][0]
        assert r["amount"] == "250.50" and r["currency"] == "INR"
        assert r["forward_state"] == "done" and r["forward_attempts"] == 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["received_at"])

        rc, out, err = ctl(d, "list", expect=0)
        lines = out.decode().splitlines()
        assert lines[0].split() == ["ID", "RECEIVED_AT", "TYPE", "EVENT_KEY", "ORDER_ID",
                                    "AMOUNT", "CURRENCY", "STATE", "ATTEMPTS"]
        assert len(lines) == 6, lines          # the newline in the order id is escaped
        assert b"\x1b" not in out
        assert "o'\"$(touch /tmp/pwned)`id`;\\x0a\\x1b[31mred" in out.decode()
        # aligned: every row's RECEIVED_AT starts in the same column
        starts = {re.search(r"\d{4}-\d\d-\d\dT", ln).start() for ln in lines[1:]}
        assert len(starts) == 1, lines
        assert re.search(r"\s\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s", lines[1])


def test_show_by_id_and_key():
    with Daemon() as d:
        ids = fill(d)
        key = "PAYMENT_SUCCESS_WEBHOOK:5004"
        body = payment_body("5004", order_id=NASTY_ORDER)
        d.post_json(body)                       # a second delivery: deliveries = 2
        j = ctl_json(d, "show", str(ids[key]))
        assert j["event"]["event_key"] == key and j["event"]["order_id"] == NASTY_ORDER
        assert j["event"]["deliveries"] == 2
        assert j["body"] == body.decode() and j["body_base64"] is False
        assert j["history"] == []
        env = json.loads(j["envelope"])
        assert env["id"] == ids[key] and env["attempt"] == 1 == j["envelope_attempt"]
        assert env["order_id"] == NASTY_ORDER and env["format"] == "json"
        assert env["payload"]["data"]["order"]["order_id"] == NASTY_ORDER
        assert ctl_json(d, "show", key)["event"]["id"] == ids[key]

        rc, out, err = ctl(d, "show", key, expect=0)
        head, sep, raw = out.partition(b"exactly as received):\n")
        assert sep and raw == body                  # the body's exact bytes, last
        assert b"\x1b" not in head
        assert b"deliveries         2" in head and b"delivery history: 0 attempts" in head
        rc, out, err = ctl(d, "show", str(ids[key]), "--body", expect=0)
        assert out == body

        rc, out, err = ctl(d, "show", "999999", expect=1)
        assert "no event with id 999999" in err and out == b""
        rc, out, err = ctl(d, "show", "NOPE:1", "--json", expect=1)
        assert "no event with key 'NOPE:1'" in err


def test_show_binary_body_as_base64():
    with Daemon() as d:
        body = b'{"type":"ODD","x":"\xff\xfe\x00"}'  # signed, starts with '{', not UTF-8
        r = d.post_json(body)
        assert r.status == 200, r
        eid = d.rows("SELECT id FROM events")[0][0]
        j = ctl_json(d, "show", str(eid))
        assert j["body_base64"] is True and base64.b64decode(j["body"]) == body
        rc, out, err = ctl(d, "show", str(eid), "--body", expect=0)
        assert out == body


def test_usage_errors_exit_2_without_touching_the_database():
    with Daemon(start=False) as d:
        missing = os.path.join(d.tmp, "nope.db")
        cases = [
            (["status", "extra"], "unexpected argument"),
            (["frobnicate"], "unknown command"),
            (["list", "--colour"], "unknown option"),
            (["list", "--since", "2024-02-30"], "not a date"),
            (["list", "--since", "yesterday"], "YYYY-MM-DD"),
            (["list", "--since", "2024-01-01T00:00:00+5:30"], "not a date"),
            (["list", "--since", "2024-01-01T00:00:00.5Z"], "not a date"),
            (["orders", "--state", "paid"], "PENDING, PAID, FAILED or USER_DROPPED"),
            (["orders", "--type", "X"], "does not take --type"),
            (["order"], "missing argument"),
            (["order", ""], "empty order id"),
            (["--tz", "Asia/Kolkatta", "status"], "unknown time zone 'Asia/Kolkatta'"),
            (["--tz", "+5:30", "orders"], "unknown time zone"),
            (["list", "--limit", "0"], "--limit"),
            (["list", "--limit", "ten"], "--limit"),
            (["list", "--state", "stuck"], "pending, done or dead"),
            (["list", "--before", "2024-01-01"], "does not take --before"),
            (["show"], "missing argument"),
            (["show", "1", "2"], "unexpected argument"),
            (["replay"], "--dead"),
            (["replay", "3", "--dead"], "--dead"),
            (["prune"], "--before"),
            (["prune", "--before", "01/02/2024"], "not a date"),
            (["status", "--limit"], "missing value"),
            ([], "usage"),
        ]
        for args, msg in cases:
            p = subprocess.run([binary("cfhookctl"), "-d", missing] + args,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10 * SLOW)
            assert p.returncode == 2, (args, p.returncode, p.stderr)
            assert msg in p.stderr.decode(), (args, p.stderr)
        p = subprocess.run([binary("cfhookctl"), "-c", d.conf_path, "-d", missing, "status"],
                           stderr=subprocess.PIPE, timeout=10 * SLOW)
        assert p.returncode == 2 and b"not both" in p.stderr
        # a wrong path is an error, never a new empty database
        p = subprocess.run([binary("cfhookctl"), "-d", missing, "status"],
                           stderr=subprocess.PIPE, timeout=10 * SLOW)
        assert p.returncode == 1, p.stderr
        assert not os.path.exists(missing)
        for flag in ("--help", "-h"):
            p = subprocess.run([binary("cfhookctl"), flag], stdout=subprocess.PIPE, timeout=10)
            assert p.returncode == 0 and b"replay" in p.stdout and b"prune" in p.stdout
        p = subprocess.run([binary("cfhookctl"), "--version"], stdout=subprocess.PIPE, timeout=10)
        assert p.returncode == 0 and p.stdout.startswith(b"cfhookctl ")


def test_replay_dead_is_delivered_by_the_running_daemon():
    with Daemon(start=False) as d:
        flag = os.path.join(d.tmp, "fail")
        seen = os.path.join(d.tmp, "seen")
        hook = write_hook(d, 'printf "%%s %%s\\n" "$CFHOOK_EVENT_KEY" "$CFHOOK_ATTEMPT" >> %s\n'
                             '[ -e %s ] && exit 1\nexit 0\n' % (seen, flag))
        open(flag, "w").close()
        d.config.update({"forward": "hook:" + hook, "forward_max_attempts": "2",
                         "forward_backoff": "1"})
        d.write_config()
        d.start()
        assert d.post_json(payment_body("6001", order_id="dead-order")).status == 200
        wait_until(lambda: d.rows("SELECT forward_state FROM events")[0][0] == "dead",
                   what="the event to go dead")
        s = ctl_json(d, "status")
        assert s["dead"] == 1
        eid = d.rows("SELECT id FROM events")[0][0]
        j = ctl_json(d, "show", str(eid))
        assert [h["attempt"] for h in j["history"]] == [1, 2]
        assert all(h["ok"] is False for h in j["history"])
        assert j["event"]["last_error"]

        os.unlink(flag)                         # the merchant fixed the hook
        rc, out, err = ctl(d, "replay", "--dead", expect=0)
        assert out.decode().startswith("queued 1 dead event: %d" % eid), out
        wait_until(lambda: d.rows("SELECT forward_state FROM events")[0][0] == "done",
                   what="the replayed event to be delivered")
        row = d.rows("SELECT forward_attempts, last_error, forwarded_at FROM events")[0]
        assert row[0] == 3 and row[1] is None and row[2] is not None
        with open(seen) as f:
            attempts = [ln.split()[1] for ln in f.read().splitlines()]
        # the attempt number keeps counting: the consumer sees a repeat
        assert attempts == ["1", "2", "3"], attempts
        j = ctl_json(d, "show", str(eid))
        assert [h["ok"] for h in j["history"]] == [False, False, True]
        assert [h["attempt"] for h in j["history"]] == [1, 2, 3]
        assert j["event"]["forward_attempts"] == 3 and j["event"]["replay_base"] == 2
        rc, out, err = ctl(d, "show", str(eid), expect=0)
        assert re.search(rb"forward_attempts\s+3\n", out), out
        assert re.search(rb"replay_base\s+2\n", out), out
        assert ctl_json(d, "replay", "--dead") == {"queued": []}


def test_replay_done_event_by_id_and_key():
    with Daemon(start=False) as d:
        seen = os.path.join(d.tmp, "seen")
        hook = write_hook(d, 'printf "%%s\\n" "$CFHOOK_EVENT_KEY" >> %s\nexit 0\n' % seen)
        d.config["forward"] = "hook:" + hook
        d.write_config()
        d.start()
        for pid in ("6101", "6102"):
            assert d.post_json(payment_body(pid, order_id="o" + pid)).status == 200
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'"
                                  )[0][0] == 2, what="two deliveries")
        ids = {r[1]: r[0] for r in d.rows("SELECT id, event_key FROM events")}
        j = ctl_json(d, "replay", str(ids["PAYMENT_SUCCESS_WEBHOOK:6101"]),
                     "PAYMENT_SUCCESS_WEBHOOK:6102")
        assert sorted(q["id"] for q in j["queued"]) == sorted(ids.values())
        assert all(q["previous_state"] == "done" for q in j["queued"])
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'"
                                  )[0][0] == 2 and len(open(seen).read().splitlines()) == 4,
                   what="two more deliveries")
        rc, out, err = ctl(d, "replay", "424242", expect=1)
        assert "no event with id '424242'" in err


def test_replay_leaves_pending_alone():
    with Daemon(start=False) as d:
        hook = write_hook(d, "exit 3\n")       # always fails; long backoff keeps it pending
        d.config.update({"forward": "hook:" + hook, "forward_backoff": "3600",
                         "forward_max_attempts": "5"})
        d.write_config()
        d.start()
        assert d.post_json(payment_body("6201")).status == 200
        # the attempt counts at its claim; last_error marks it finished
        wait_until(lambda: d.rows("SELECT last_error FROM events")[0][0] is not None,
                   what="the first failed attempt")
        eid = d.rows("SELECT id FROM events")[0][0]
        before = tuple(d.rows("SELECT forward_attempts, next_attempt_at, last_error FROM events")[0])
        j = ctl_json(d, "replay", str(eid))
        assert j == {"queued": [], "already_pending": [eid], "not_found": []}
        after = tuple(d.rows("SELECT forward_attempts, next_attempt_at, last_error FROM events")[0])
        assert after == before
        s = ctl_json(d, "status")
        assert s["pending"] == 1 and s["pending_due"] == 0
        assert s["oldest_pending"]["id"] == eid and s["oldest_pending"]["forward_attempts"] == 1
        rc, out, err = ctl(d, "status", expect=0)
        assert b"oldest pending     #%d PAYMENT_SUCCESS_WEBHOOK:6201" % eid in out
        assert b"next attempt" in out and b"last error" in out


def test_prune_keeps_tombstones_and_pending():
    with Daemon(start=False) as d:
        hook = write_hook(d, '[ "$CFHOOK_ORDER_ID" = stuck ] && exit 1\nexit 0\n')
        d.config.update({"forward": "hook:" + hook, "forward_backoff": "3600",
                         "forward_max_attempts": "5"})
        d.write_config()
        d.start()
        old = [payment_body(str(7000 + i), order_id="o%d" % i) for i in range(3)]
        for b in old:
            assert d.post_json(b).status == 200
        assert d.post_json(payment_body("7100", order_id="stuck")).status == 200
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'"
                                  )[0][0] == 3 and d.rows(
            "SELECT last_error FROM events WHERE order_id = 'stuck'")[0][0] is not None,
            what="3 deliveries and 1 failure")
        assert d.rows("SELECT count(*) FROM forward_log")[0][0] == 4

        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
        j = ctl_json(d, "prune", "--before", tomorrow, "--dry-run")
        assert j["dry_run"] is True and j["events"] == 3 and j["pending_kept"] == 1
        assert d.rows("SELECT count(*) FROM events")[0][0] == 4     # dry run: untouched

        rc, out, err = ctl(d, "prune", "--before", tomorrow, expect=0)
        assert b"pruned 3 done or dead events" in out and b"3 keys kept" in out, out
        assert b"kept 1 older event still pending" in out, out
        assert [r[0] for r in d.rows("SELECT order_id FROM events")] == ["stuck"]
        assert d.rows("SELECT count(*) FROM pruned_keys")[0][0] == 3
        assert d.rows("SELECT count(*) FROM forward_log")[0][0] == 1   # the stuck one's

        # A pruned event re-sent by Cashfree is still a duplicate: 200, no row, no delivery.
        r = d.post_json(old[0])
        assert r.status == 200 and r.json()["result"] == "duplicate", r
        assert d.rows("SELECT count(*) FROM events")[0][0] == 1
        assert d.rows("SELECT deliveries FROM pruned_keys WHERE event_key = ?",
                      ("PAYMENT_SUCCESS_WEBHOOK:7000",))[0][0] == 2
        rc, out, err = ctl(d, "show", "PAYMENT_SUCCESS_WEBHOOK:7000", expect=1)
        assert "pruned" in err and "2 deliveries" in err, err
        assert ctl_json(d, "status")["pruned_keys"] == 3
        j = ctl_json(d, "prune", "--before", tomorrow)
        assert j["events"] == 0 and j["pending_kept"] == 1 and j["dry_run"] is False


def test_ctl_runs_while_the_daemon_takes_traffic():
    """Readers never block intake: list/status in a loop during a burst of posts."""
    with Daemon() as d:
        stop = time.monotonic() + 3 * SLOW
        n = 0
        errors = []

        def reader():
            while time.monotonic() < stop:
                for args in (["status", "--json"], ["list", "--limit", "5", "--json"]):
                    rc, out, err = ctl(d, *args)
                    if rc != 0:
                        errors.append(err)
                    else:
                        json.loads(out)

        t = threading.Thread(target=reader)
        t.start()
        while time.monotonic() < stop:
            r = d.post_json(payment_body(str(8000 + n), order_id="burst"))
            assert r.status == 200, r
            n += 1
        t.join()
        assert errors == []
        assert ctl_json(d, "status")["events"] == n
        # prune of nothing-yet-old takes the write lock briefly; intake still answers
        assert ctl_json(d, "prune", "--before", "2000-01-01")["events"] == 0
        assert d.post_json(payment_body("8999")).status == 200


def as_nobody(d, *args):
    """cfhookctl -d DB ARGS run as the user nobody; (rc, stdout, stderr)."""
    runuser = shutil.which("runuser")
    p = subprocess.run([runuser, "-u", "nobody", "--", binary("cfhookctl"), "-d", d.db_path]
                       + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30 * SLOW)
    err = p.stderr.decode(errors="replace")
    assert SANITIZER_RE.search(err) is None, err
    return p.returncode, p.stdout, err


def test_read_commands_need_no_write_access():
    """A user who may read the database but not write it (here: nobody, with
    the files mode 0644) runs the read commands, while the daemon runs and
    after it stopped; replay and prune need write access and say so."""
    sqlite_only("file modes; a PostgreSQL role's privileges are the server's")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        raise Skip("needs root and runuser to run cfhookctl as another user")
    with Daemon() as d:
        ids = fill(d)
        os.chmod(d.tmp, 0o755)
        for sfx in ("", "-wal", "-shm"):
            os.chmod(d.db_path + sfx, 0o644)
        for running in (True, False):
            if not running:
                d.stop()
                # the WAL and -shm stay (empty WAL) for readers like this one
                assert os.path.exists(d.db_path + "-wal") and os.path.exists(d.db_path + "-shm")
                os.chmod(d.db_path + "-shm", 0o644)
            rc, out, err = as_nobody(d, "--json", "status")
            assert rc == 0, err
            assert json.loads(out)["events"] == 5
            rc, out, err = as_nobody(d, "--json", "list")
            assert rc == 0 and len(json.loads(out)) == 5, err
            rc, out, err = as_nobody(d, "show", str(ids["PAYMENT_SUCCESS_WEBHOOK:5001"]))
            assert rc == 0 and b"PAYMENT_SUCCESS_WEBHOOK:5001" in out, err
            rc, out, err = as_nobody(d, "replay", str(ids["PAYMENT_SUCCESS_WEBHOOK:5001"]))
            assert rc == 1, (out, err)
            assert "for writing" in err and "Permission denied" in err, err
            rc, out, err = as_nobody(d, "prune", "--before", "2000-01-01")
            assert rc == 1 and "for writing" in err, err
        # nothing was changed, and nothing is owned by nobody now
        con = sqlite3.connect(d.db_path)
        assert con.execute("SELECT count(*) FROM events WHERE forward_state = 'done'"
                           ).fetchone()[0] == 5
        con.close()
        for name in os.listdir(d.tmp):
            assert os.stat(os.path.join(d.tmp, name)).st_uid == 0, name
