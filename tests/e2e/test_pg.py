"""PostgreSQL as the store of several receivers (README "Several receivers"):
two daemons on one database, an outage of the database and the daemon getting
over it by itself, the password from systemd's credential, --check, and an
SQLite database moved over with cfhookctl copy. Each test makes its databases
on the test server ($CFHOOK_TEST_PG, started by tests/run); the outage and the
password tests run a server of their own (tests/pg-server)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from harness import (SANITIZER_RE, SLOW, TOP, Daemon, PgDatabase, Skip, binary, payment_body,
                     psql)

PG_SERVER = os.path.join(TOP, "tests", "pg-server")


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def ctl(db, *args, expect=0):
    p = subprocess.run([binary("cfhookctl"), "-d", db] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60 * SLOW)
    err = p.stderr.decode(errors="replace")
    assert SANITIZER_RE.search(err) is None, err
    if expect is not None:
        assert p.returncode == expect, (args, p.returncode, p.stdout[-2000:], err)
    return p.returncode, p.stdout.decode(errors="replace"), err


def ctl_json(db, *args):
    return json.loads(ctl(db, "--json", *args)[1])


class PrivateServer:
    """A PostgreSQL server of the test's own, to stop and start at will."""

    def __init__(self):
        if not os.path.exists(PG_SERVER) or subprocess.run(
                ["sh", "-c", "ls /usr/lib/postgresql/*/bin/initdb"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            raise Skip("PostgreSQL is not installed (scripts/install-deps installs postgresql)")
        self.dir = tempfile.mkdtemp(prefix="cfhook-pg-")
        self.base = self._run("start").strip()

    def _run(self, what):
        p = subprocess.run([PG_SERVER, what, self.dir], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        return p.stdout.decode()

    def database(self, name):
        psql(self.base, "CREATE DATABASE %s;" % name)
        return self.base + "&dbname=" + name

    def down(self):
        self._run("down")

    def up(self):
        self._run("up")

    def close(self):
        subprocess.run([PG_SERVER, "stop", self.dir], timeout=60)


def healthz(d):
    r = d.request("GET", "/healthz")
    return r.status, r.json()


def test_two_instances_same_events_give_one_row_each():
    """Cashfree's retry lands on the other receiver, or both get the same
    delivery at once: one row per event, 'new' on exactly one of them."""
    db = PgDatabase()
    try:
        with Daemon(config={"database": db.uri}) as a, \
                Daemon(config={"database": db.uri}) as b:
            results, errors = [], []

            def send(d, ids):
                for i in ids:
                    r = d.post_json(payment_body(str(770000 + i), "order-%d" % (i % 7)))
                    if r.status != 200:
                        errors.append((i, r))
                    else:
                        results.append((i, r.json()["result"]))

            ids = list(range(40))
            threads = [threading.Thread(target=send, args=(a, ids)),
                       threading.Thread(target=send, args=(b, ids[::-1])),
                       threading.Thread(target=send, args=(a, ids[::-1])),
                       threading.Thread(target=send, args=(b, ids))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            for i in ids:
                assert sorted(r for j, r in results if j == i) == \
                    ["duplicate", "duplicate", "duplicate", "new"], i
            assert db.rows("SELECT count(*) FROM events")[0][0] == 40
            assert db.rows("SELECT min(deliveries), max(deliveries) FROM events")[0] == (4, 4)
            # the ledger counted each payment once
            assert db.rows("SELECT sum(successes) FROM orders")[0][0] == 40
            assert "deadlock" not in a.log() + b.log()
    finally:
        db.drop()


def test_outage_is_503_then_healed_by_itself():
    """The database goes away: webhooks get 503 within the bounded wait,
    /healthz says why; it comes back: the writer and the forwarder reconnect
    by themselves."""
    srv = PrivateServer()
    tmp = tempfile.mkdtemp(prefix="cfhook-shared-")
    try:
        uri = srv.database("outage")
        hook = shared_hook(tmp, "0")
        with Daemon(config={"database": uri, "forward": "hook:" + hook}) as d:
            assert d.post_json(payment_body("881001")).status == 200
            assert healthz(d)[0] == 200
            wait_until(lambda: len(hook_log(tmp)) == 1, what="the first delivery")
            srv.down()
            t0 = time.monotonic()
            r = d.post_json(payment_body("881002"))
            took = time.monotonic() - t0
            assert r.status == 503, r
            assert took < 7 * SLOW, took
            status, h = healthz(d)
            assert status == 503 and h["store"].startswith("unavailable"), h
            wait_until(lambda: "not writable" in d.log(), what="the outage logged")
            wait_until(lambda: "outbox: connect" in d.log(), what="the forwarder's warning")
            srv.up()
            wait_until(lambda: healthz(d)[0] == 200, timeout=15, what="healthz ok again")
            assert "takes writes again" in d.log()
            assert d.post_json(payment_body("881002")).json()["result"] == "new"
            assert d.post_json(payment_body("881001")).json()["result"] == "duplicate"
            wait_until(lambda: len(hook_log(tmp)) == 2, timeout=15,
                       what="the forwarder delivering again")
            assert hook_log(tmp)[1].startswith("PAYMENT_SUCCESS_WEBHOOK:881002 1")
            assert d.log().count("outbox: connect:") == 1, d.log()   # once, not a second
    finally:
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_password_from_the_credential_and_never_logged():
    """A role that needs its password: cfhookd reads it from
    $CREDENTIALS_DIRECTORY/database-password (systemd's LoadCredential=),
    fails to start without it, and never writes it to the log."""
    srv = PrivateServer()
    try:
        uri = srv.database("secured")
        psql(uri, "CREATE ROLE cfh LOGIN PASSWORD 'Pw-8Jq-xyzzy';"
                  "GRANT ALL ON SCHEMA public TO cfh;")
        hba = os.path.join(srv.dir, "data", "pg_hba.conf")
        with open(hba) as f:
            rules = f.read()
        with open(hba, "w") as f:
            f.write("local all cfh scram-sha-256\n" + rules)
        psql(srv.base, "SELECT pg_reload_conf();")
        role_uri = uri.replace("user=postgres", "user=cfh")
        creds = tempfile.mkdtemp(prefix="cfhook-cred-")
        with open(os.path.join(creds, "database-password"), "w") as f:
            f.write("Pw-8Jq-xyzzy\n")
        with Daemon(config={"database": role_uri}, start=False) as d:
            d.start(wait=False)
            assert d.wait(20 * SLOW) == 1
            d.proc = None
            d.logf.close()
            assert "password authentication failed" in d.log() or \
                "no password supplied" in d.log(), d.log()
        with Daemon(config={"database": role_uri},
                    env={"CREDENTIALS_DIRECTORY": creds}) as d:
            assert d.post_json(payment_body("882001")).status == 200
            d.stop()
            assert "Pw-8Jq" not in d.log()
        # a password in the URI itself is shown masked
        with Daemon(config={"database": role_uri.replace("postgresql:///",
                                                         "postgresql://cfh:Pw-8Jq-xyzzy@/")}) as d:
            assert d.post_json(payment_body("882002")).status == 200
            d.stop()
            assert "cfh:***@" in d.log() and "Pw-8Jq" not in d.log()
    finally:
        srv.close()


def test_check_reads_the_database_creating_nothing():
    db = PgDatabase()
    try:
        d = Daemon(config={"database": db.uri}, start=False)
        try:
            p = subprocess.run([binary(), "-c", d.conf_path, "--check"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30 * SLOW)
            assert p.returncode == 0, p.stderr
            assert b"PostgreSQL, to be created" in p.stdout
            assert db.rows("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                           )[0][0] == 0
            d.config["database"] = db.uri.replace("host=", "host=/nonexistent&h=") \
                .replace("postgresql:///", "postgresql://u:Pw-Zz9@/")
            d.write_config()
            p = subprocess.run([binary(), "-c", d.conf_path, "--check"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30 * SLOW)
            assert p.returncode == 1
            err = p.stderr.decode()
            assert "cannot connect" in err and "u:***@" in err and "Pw-Zz9" not in err, err
        finally:
            d.close()
    finally:
        db.drop()


def test_copy_an_sqlite_database_then_serve_from_postgresql():
    """Events, orders, tombstones and delivery history move over row for row;
    the daemon on PostgreSQL then knows every old event (a re-send is a
    duplicate, a pruned one too) and numbers new ones after them."""
    db = PgDatabase()
    try:
        tmp = tempfile.mkdtemp(prefix="cfhookd-e2e-")
        # SQLite, whichever store the pass runs on
        src = Daemon(tmp=tmp, config={"database": os.path.join(tmp, "events.db")}, start=False)
        try:
            src.start()
            bodies = [payment_body(str(883000 + i), "o-%d" % (i % 3)) for i in range(6)]
            for b in bodies:
                assert src.post_json(b).json()["result"] == "new"
            assert src.post_json(bodies[0]).json()["result"] == "duplicate"
            assert src.post_form([("type", "PAYMENT_LINK_EVENT"), ("link_id", "L1"),
                                  ("link_status", "PAID"), ("order_id", "o-link"),
                                  ("transaction_id", "9001"),
                                  ("transaction_status", "SUCCESS"),
                                  ("order_amount", "5.00"), ("link_currency", "INR")]
                                 ).status == 200
            src.stop()
            sqlite_path = src.db_path
            # old events pruned: their keys stay as tombstones
            src.execute("UPDATE events SET received_at = 1000 WHERE id <= 2")
            ctl(sqlite_path, "prune", "--before", "2000-01-01")
            before = {k: ctl_json(sqlite_path, *a) for k, a in
                      (("list", ("list",)), ("orders", ("orders",)),
                       ("show", ("show", "4")), ("order", ("order", "o-1")))}
            masked = db.uri.replace("postgresql:///", "postgresql://postgres:Pw-c0py@/")
            rc, out, err = ctl(sqlite_path, "copy", "--to", masked)
            assert "Pw-c0py" not in out + err and "postgres:***@" in out, out
            assert "events             5" in out and "pruned_keys        2" in out, out
            after = {k: ctl_json(db.uri, *a) for k, a in
                     (("list", ("list",)), ("orders", ("orders",)),
                      ("show", ("show", "4")), ("order", ("order", "o-1")))}
            assert after == before
            # a second copy is refused: the target is not empty any more
            rc, out, err = ctl(sqlite_path, "copy", "--to", db.uri, expect=1)
            assert "already holds events" in err, err
            with Daemon(config={"database": db.uri}) as d:
                assert d.post_json(bodies[5]).json()["result"] == "duplicate"
                assert d.post_json(bodies[0]).json()["result"] == "duplicate"   # pruned
                r = d.post_json(payment_body("883999", "o-new")).json()
                assert r["result"] == "new"
                assert d.rows("SELECT id FROM events WHERE event_key = ?",
                              ("PAYMENT_SUCCESS_WEBHOOK:883999",))[0][0] > 7
                assert d.rows("SELECT deliveries FROM pruned_keys WHERE event_key = ?",
                              ("PAYMENT_SUCCESS_WEBHOOK:883000",))[0][0] == 3
        finally:
            src.close()
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        db.drop()


def shared_hook(tmp, sleep_s):
    """A hook both daemons run: it logs "KEY ATTEMPT" and, through a lock
    directory per order, any delivery that overlaps another of its order."""
    path = os.path.join(tmp, "hook.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                "d=%s\n"
                "mkdir \"$d/o-$3\" 2>/dev/null || echo \"OVERLAP $CFHOOK_EVENT_KEY\" >>\"$d/log\"\n"
                "echo \"$CFHOOK_EVENT_KEY $CFHOOK_ATTEMPT\" >>\"$d/log\"\n"
                "sleep %s\n"
                "rmdir \"$d/o-$3\"\n" % (tmp, sleep_s))
    os.chmod(path, 0o755)
    return path


def hook_log(tmp):
    try:
        with open(os.path.join(tmp, "log")) as f:
            return f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []


def post_all(daemons, bodies):
    """Every body to every daemon at once, each from its own thread; the
    statuses as (daemon index, body index, status)."""
    out = []

    def send(k, d, order):
        for i in order:
            out.append((k, i, d.post_json(bodies[i]).status))

    order = list(range(len(bodies)))
    threads = [threading.Thread(target=send, args=(k, d, order if k % 2 == 0 else order[::-1]))
               for k, d in enumerate(daemons)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_two_instances_forward_each_event_once_in_order():
    """Both daemons forward from the one outbox: each event goes out once,
    never two of one order at the same time, and each order's events in the
    order received."""
    db = PgDatabase()
    tmp = tempfile.mkdtemp(prefix="cfhook-shared-")
    try:
        hook = shared_hook(tmp, "0.05")
        conf = {"database": db.uri, "forward": "hook:" + hook, "forward_concurrency": 4}
        with Daemon(config=conf) as a, Daemon(config=conf) as b:
            bodies = [payment_body(str(884000 + i), "ord-%d" % (i % 5), amount="1")
                      for i in range(30)]
            assert all(s == 200 for _, _, s in post_all([a, b], bodies))
            wait_until(lambda: db.rows("SELECT count(*) FROM events WHERE forward_state"
                                       " = 'done'")[0][0] == 30, timeout=30,
                       what="every event delivered")
            log = hook_log(tmp)
            assert not [x for x in log if x.startswith("OVERLAP")], log
            keys = [x.split()[0] for x in log]
            assert sorted(keys) == sorted(set(keys)) and len(keys) == 30, log
            assert all(x.split()[1] == "1" for x in log), log
            # per order, delivered in id order
            ids = {r[0]: r[1] for r in db.rows("SELECT event_key, id FROM events")}
            orders = {r[0]: r[1] for r in db.rows("SELECT event_key, order_id FROM events")}
            for o in set(orders.values()):
                seq = [ids[k] for k in keys if orders[k] == o]
                assert seq == sorted(seq), (o, seq)
            assert db.rows("SELECT count(*) FROM forward_log WHERE ok = 1")[0][0] == 30
            # Both take part. Which instance claims an event posted to both
            # at once is a race (above, one may win them all), so each in
            # turn delivers alone while the other is stopped (SIGSTOP: idle,
            # it holds no claim), as when one receiver stalls.
            for k, (d, other) in enumerate(((a, b), (b, a))):
                keys = []
                other.proc.send_signal(signal.SIGSTOP)
                try:
                    for i in range(3):
                        body = payment_body(str(884100 + 10 * k + i), "solo-%d-%d" % (k, i),
                                            amount="1")
                        assert d.post_json(body).status == 200
                        keys.append("PAYMENT_SUCCESS_WEBHOOK:%d" % (884100 + 10 * k + i))
                    wait_until(lambda: db.rows("SELECT count(*) FROM events WHERE"
                                               " forward_state = 'done'")[0][0] == 33 + 3 * k,
                               timeout=30, what="the solo events delivered")
                finally:
                    other.proc.send_signal(signal.SIGCONT)
                for x in keys:
                    assert "forward: delivered %s " % x in d.log(), (k, x)
            assert db.rows("SELECT count(*) FROM forward_log WHERE ok = 1")[0][0] == 36
    finally:
        db.drop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_sigkill_of_one_instance_loses_nothing():
    """One of two daemons is killed under load, hooks and claims and all:
    every event acknowledged is stored, and the other daemon delivers what
    the dead one had claimed once its lease runs out, as a later attempt."""
    db = PgDatabase()
    tmp = tempfile.mkdtemp(prefix="cfhook-shared-")
    try:
        hook = shared_hook(tmp, "0.3")
        conf = {"database": db.uri, "forward": "hook:" + hook, "forward_concurrency": 2}
        with Daemon(config=conf) as a, Daemon(config=conf) as b:
            bodies = [payment_body(str(885000 + i), "kord-%d" % i, amount="1")
                      for i in range(24)]
            acked = [i for _, i, s in post_all([a, b], bodies) if s == 200]
            assert sorted(set(acked)) == list(range(24))
            wait_until(lambda: db.rows("SELECT count(*) FROM events WHERE claimed_by"
                                       " IS NOT NULL")[0][0] >= 2, what="claims under way")
            a.kill()
            t0 = time.monotonic()
            # a was killed: its claims must not wait for its return
            wait_until(lambda: db.rows("SELECT count(*) FROM events WHERE forward_state"
                                       " = 'done'")[0][0] == 24, timeout=60,
                       what="every event delivered by the survivor")
            took = time.monotonic() - t0
            assert took < 45 * SLOW, took
            assert db.rows("SELECT count(*) FROM events")[0][0] == 24
            log = [x.split() for x in hook_log(tmp) if not x.startswith("OVERLAP")]
            delivered = {k for k, _ in log}
            assert len(delivered) == 24
            retried = [r[0] for r in db.rows("SELECT event_key FROM events"
                                             " WHERE forward_attempts > 1")]
            assert retried, "a was killed before it delivered anything"
            for k in retried:     # each one that a's death cut off went out again
                assert [k, "2"] in log or [k, "3"] in log, (k, log)
            assert db.rows("SELECT count(*) FROM forward_log WHERE finished_at IS NULL"
                           " AND error IS NULL")[0][0] == 0
            # the dead daemon's attempts are closed, saying why
            assert db.rows("SELECT count(*) FROM forward_log WHERE error ="
                           " 'interrupted: its lease ran out'")[0][0] == len(retried)
    finally:
        db.drop()
        shutil.rmtree(tmp, ignore_errors=True)
