"""Faults under the database, one test per fault (DESIGN "Database": a commit
is durable only into the files the path names; "HTTP behaviour": 503 when
the database is not writable). The real daemon, real files, a real tmpfs.

Each test sends new events one after another, breaks something, repairs it
and measures how long the daemon takes to answer 200 again; then it kills
the daemon (SIGKILL), starts it again, and checks that every event that was
answered 200 is in the database: no 200 without a durable row.

    python3 tests/e2e/test_faults.py        # every test, with its figures

The figures in README "Failure behaviour" come from such a run. Tests that
need root (a tmpfs, chattr) skip with their reason elsewhere.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

from harness import SLOW, TOP, Daemon, Skip, binary, payment_body

KEY = "PAYMENT_SUCCESS_WEBHOOK:"
BUSY_TIMEOUT_S = 5          # STORE_BUSY_TIMEOUT_MS
WAL_LIMIT = 16 * 1024 * 1024    # STORE_WAL_LIMIT



def schema_version():
    """STORE_SCHEMA_VERSION of include/store.h: the version this build writes."""
    with open(os.path.join(TOP, "include", "store.h")) as f:
        return int(re.search(r"#define STORE_SCHEMA_VERSION\s+(\d+)", f.read()).group(1))

def need_root(what):
    if os.geteuid() != 0:
        raise Skip("needs root to " + what)


class Poster:
    """Sends new payment events one at a time and keeps every answer."""

    def __init__(self, d, prefix):
        self.d = d
        self.prefix = prefix
        self.n = 0
        self.answers = []           # (monotonic time, event_key, status)

    def post(self, body_kb=0):
        self.n += 1
        pid = "%s%06d" % (self.prefix, self.n)
        body = payment_body(pid, order_id="fault-%d" % (self.n % 5))
        if body_kb:
            body = body[:-1] + (',"pad":"%s"}' % ("x" * (body_kb * 1024))).encode()
        try:
            status = self.d.post_json(body).status
        except OSError:
            status = None
        self.answers.append((time.monotonic(), KEY + pid, status))
        return status

    def until(self, want, timeout, pause=0.02):
        """Posts until an answer is `want`; returns the time it came."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.post() == want:
                return self.answers[-1][0]
            time.sleep(pause)
        raise AssertionError("no %s within %ss; last answers %r"
                             % (want, timeout * SLOW, self.answers[-5:]))

    def keep_posting(self, seconds, pause=0.02):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.post()
            time.sleep(pause)

    def statuses(self, since=0.0):
        out = {}
        for t, _, s in self.answers:
            if t >= since:
                out[s] = out.get(s, 0) + 1
        return out

    def acked(self):
        return [k for _, k, s in self.answers if s == 200]


def healthz(d):
    r = d.request("GET", "/healthz")
    return r.status, r.json()


def wait_healthz(d, status, timeout=10):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        st, body = healthz(d)
        if st == status:
            return time.monotonic(), body
        if time.monotonic() > deadline:
            raise AssertionError("/healthz never %d: %r" % (status, body))
        time.sleep(0.05)


def no_200_without_a_row(d, poster, lost_ok=()):
    """SIGKILL, start again, and find every event answered 200 (but those
    the test itself deleted, `lost_ok`) in the database."""
    d.kill()
    d.start()
    have = {r[0] for r in d.rows("SELECT event_key FROM events")}
    acked = [k for k in poster.acked() if k not in set(lost_ok)]
    missing = [k for k in acked if k not in have]
    assert not missing, "answered 200 but gone after a crash: %r" % missing[:10]
    assert d.rows("PRAGMA integrity_check")[0][0] == "ok"
    return len(acked)


def figure(name, text):
    print("%-28s %s" % (name + ":", text))


# -- the WAL deleted ----------------------------------------------------------

HOOK = "#!/bin/sh\nprintf '%s\\n' \"$CFHOOK_EVENT_KEY\" >> \"$0.log\"\ncat >/dev/null\n"


def test_wal_deleted_while_running():
    """The WAL deleted under the running daemon: the batch that committed
    into the unlinked file is answered 503, the daemon saves what that WAL
    held into the database, reopens, and forwards again; nothing answered
    200 is lost to a crash afterwards."""
    with Daemon(start=False) as d:
        hook = os.path.join(d.tmp, "hook.sh")
        with open(hook, "w") as f:
            f.write(HOOK)
        os.chmod(hook, 0o755)
        d.config["forward"] = "hook:" + hook
        d.write_config()
        d.start()
        p = Poster(d, "41")
        for _ in range(60):
            assert p.post() == 200
        t_fault = time.monotonic()
        os.unlink(d.db_path + "-wal")
        t_503 = p.until(503, 5)
        st, body = healthz(d)
        assert st == 503 and body["store"] in ("moved", "ok"), body
        t_back = p.until(200, 10)
        t_ok, body = wait_healthz(d, 200)
        assert body["store"] == "ok" and body["status"] == "ok", body
        assert os.path.exists(d.db_path + "-wal")
        p.keep_posting(1.0)
        assert p.statuses(t_back + 0.5) == {200: p.statuses(t_back + 0.5).get(200, 0)}
        d.wait_log(r"the WAL file was deleted while open: webhooks are answered 503")
        d.wait_log(r"reopened")
        # every event reaches the hook again after the reopen
        deadline = time.monotonic() + 15 * SLOW
        while d.rows("SELECT count(*) FROM events WHERE forward_state != 'done'")[0][0]:
            assert time.monotonic() < deadline, "forwarding did not resume"
            time.sleep(0.1)
        n = no_200_without_a_row(d, p)
        figure("WAL deleted", "first 503 %.2f s after, 200 again %.2f s after the "
               "deletion (%d x 503), /healthz ok %.2f s after; %d acknowledged, none lost"
               % (t_503 - t_fault, t_back - t_fault, p.statuses(t_fault).get(503, 0),
                  t_ok - t_fault, n))


# -- the database directory removed or renamed --------------------------------

def state_daemon(tmp_name="state"):
    d = Daemon(start=False)
    state = os.path.join(d.tmp, tmp_name)
    os.mkdir(state, 0o700)
    d.db_path = os.path.join(state, "events.db")
    d.config["database"] = d.db_path
    d.write_config()
    d.start()
    return d, state


def backup(src, dst):
    s = sqlite3.connect(src)
    t = sqlite3.connect(dst)
    s.backup(t)
    t.close()
    s.close()


def test_database_directory_removed():
    """rm -r of the database directory: 503 from the next batch on, "moved"
    in /healthz, a log line that says what to do, and never a new empty
    database in its place (not even once the directory is back, empty).
    Restoring a backup there brings the daemon back by itself."""
    d, state = state_daemon()
    with d:
        p = Poster(d, "42")
        for _ in range(30):
            assert p.post() == 200
        bak = os.path.join(d.tmp, "backup.db")
        backup(d.db_path, bak)
        in_backup = set(p.acked())
        for _ in range(10):
            assert p.post() == 200
        lost_with_the_directory = [k for k in p.acked() if k not in in_backup]
        t_fault = time.monotonic()
        shutil.rmtree(state)
        t_503 = p.until(503, 5)
        st, body = healthz(d)
        assert st == 503 and body["store"] == "moved", body
        assert "deleted" in body["reason"], body
        d.wait_log(r"the database file was deleted while open: webhooks are answered 503 "
                   r"until the database is whole at this path again; put it back there")
        os.mkdir(state, 0o700)          # the directory back, empty
        p.keep_posting(2.5)
        assert p.statuses(t_503) == {503: p.statuses(t_503)[503]}, p.statuses(t_503)
        assert os.listdir(state) == [], "a new database appeared: %r" % os.listdir(state)
        t_fix = time.monotonic()
        shutil.copy(bak, d.db_path)
        t_back = p.until(200, 15)
        t_ok, body = wait_healthz(d, 200)
        assert body["store"] == "ok", body
        d.wait_log(r"reopened")
        n = no_200_without_a_row(d, p, lost_ok=lost_with_the_directory)
        figure("directory removed", "first 503 %.2f s after the removal; 200 again %.2f s "
               "after a backup was restored, /healthz ok %.2f s after; %d acknowledged "
               "(less the %d the removal took), none lost"
               % (t_503 - t_fault, t_back - t_fix, t_ok - t_fix, n,
                  len(lost_with_the_directory)))


def test_database_file_replaced_beside_its_wal():
    """Only the database file deleted and a backup copied into its place,
    beside the running daemon's own WAL and -shm: that WAL is saved into the
    deleted file and emptied before the copy is opened, so it is never
    replayed into the copy."""
    with Daemon() as d:
        p = Poster(d, "48")
        for _ in range(20):
            assert p.post() == 200
        bak = os.path.join(d.tmp, "backup.db")
        backup(d.db_path, bak)
        in_backup = set(p.acked())
        for _ in range(5):
            assert p.post() == 200
        lost = [k for k in p.acked() if k not in in_backup]
        os.unlink(d.db_path)
        p.until(503, 5)
        t_fix = time.monotonic()
        shutil.copy(bak, d.db_path)
        t_back = p.until(200, 15)
        d.wait_log(r"reopened")
        assert d.rows("PRAGMA integrity_check")[0][0] == "ok"
        have = {r[0] for r in d.rows("SELECT event_key FROM events")}
        assert in_backup <= have and not (set(lost) & have), (len(have), lost)
        n = no_200_without_a_row(d, p, lost_ok=lost)
        figure("database file replaced", "200 again %.2f s after a backup was copied "
               "beside the daemon's WAL; %d acknowledged (less the %d the deletion took), "
               "none lost" % (t_back - t_fix, n, len(lost)))


def test_database_directory_renamed():
    """mv of the database directory: 503 while it is away, 200 again as soon
    as it is moved back (the same files: nothing to reopen)."""
    d, state = state_daemon()
    with d:
        p = Poster(d, "43")
        for _ in range(30):
            assert p.post() == 200
        t_fault = time.monotonic()
        os.rename(state, state + ".old")
        t_503 = p.until(503, 5)
        st, body = healthz(d)
        assert st == 503 and body["store"] == "moved", body
        assert "no longer at its path" in body["reason"], body
        p.keep_posting(1.5)
        assert 200 not in p.statuses(t_503)
        t_fix = time.monotonic()
        os.rename(state + ".old", state)
        t_back = p.until(200, 10)
        t_ok, _ = wait_healthz(d, 200)
        d.wait_log(r"the database files are back at the path")
        assert "reopened" not in d.log()
        n = no_200_without_a_row(d, p)
        figure("directory renamed", "first 503 %.2f s after the rename; 200 again %.2f s "
               "after it was moved back, /healthz ok %.2f s after; %d acknowledged, none lost"
               % (t_503 - t_fault, t_back - t_fix, t_ok - t_fix, n))


# -- the database file made unwritable -----------------------------------------

def chattr(path, flag):
    return subprocess.run(["chattr", flag, path], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE).returncode == 0


def scrape(d, name):
    for line in d.request("GET", "/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no series " + name)


def test_database_file_unwritable():
    """The database file immutable (chattr +i): commits still go into the
    WAL, so webhooks are 200, but checkpoints fail: logged once, counted,
    and once the WAL passes its limit /healthz says wal_over_limit. Made
    writable again, the next checkpoint empties the WAL."""
    need_root("make the database file immutable")
    if shutil.which("chattr") is None:
        raise Skip("no chattr")
    with Daemon() as d:
        p = Poster(d, "44")
        for _ in range(10):
            assert p.post() == 200
        if not chattr(d.db_path, "+i"):
            raise Skip("the file system of %s has no immutable flag" % d.tmp)
        try:
            t_fault = time.monotonic()
            failed0 = scrape(d, 'cfhookd_store_checkpoints_total{result="failed"}')
            while os.path.getsize(d.db_path + "-wal") <= WAL_LIMIT:
                assert p.post(body_kb=200) == 200
                assert time.monotonic() - t_fault < 120 * SLOW
            assert p.post() == 200
            t_over, body = wait_healthz(d, 503)
            assert body["store"] == "wal_over_limit" and body["wal_bytes"] > WAL_LIMIT, body
            assert "checkpoints cannot keep up" in body["reason"], body
            d.wait_log(r"checkpoint failed \(I/O error")
            assert d.log().count("checkpoint failed") == 1       # logged once
            assert scrape(d, 'cfhookd_store_checkpoints_total{result="failed"}') > failed0
            assert scrape(d, "cfhookd_store_healthy") == 0
        finally:
            chattr(d.db_path, "-i")
        t_fix = time.monotonic()
        t_ok, body = wait_healthz(d, 200)
        assert body["store"] == "ok" and body["wal_bytes"] < WAL_LIMIT, body
        assert p.post() == 200
        d.wait_log(r"checkpoints work again")
        n = no_200_without_a_row(d, p)
        figure("database file immutable", "all %d webhooks 200 (WAL); wal_over_limit in "
               "/healthz once the WAL passed 16 MiB (%.1f s); /healthz ok %.2f s after "
               "chattr -i; none lost" % (n, t_over - t_fault, t_ok - t_fix))


# -- a full disk --------------------------------------------------------------

def test_disk_full_then_grown_by_512k():
    """A tiny tmpfs under the database, filled; every batch 503 and /healthz
    "unavailable: disk full"; the tmpfs grown by 512 KiB (remount): webhooks
    are 200 again within 5 s and stay 200."""
    need_root("mount a tmpfs")
    d = Daemon(start=False)
    vol = os.path.join(d.tmp, "vol")
    os.mkdir(vol)
    size_k = 3072
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % size_k, "tmpfs", vol],
                      stderr=subprocess.PIPE).returncode != 0:
        d.close()
        raise Skip("cannot mount a tmpfs here")
    try:
        with d:
            d.db_path = os.path.join(vol, "events.db")
            d.config["database"] = d.db_path
            d.write_config()
            d.start()
            p = Poster(d, "45")
            for _ in range(20):
                assert p.post() == 200
            st = os.statvfs(vol)
            with open(os.path.join(vol, "filler"), "wb") as f:
                f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 256 * 1024))
            t_fill = time.monotonic()
            t_503 = p.until(503, 30, pause=0)
            p.keep_posting(1.0)
            st, body = healthz(d)
            assert st == 503 and body["store"] == "unavailable: disk full", body
            d.wait_log(r"not writable \(disk full\)")
            # idle while still full: the probes commit a row, so they fail
            # too; /healthz and the next webhook agree
            time.sleep(2.5)
            st, body = healthz(d)
            assert st == 503 and body["store"] == "unavailable: disk full", body
            assert p.post() == 503
            assert "takes writes again" not in d.log()
            t_fix = time.monotonic()
            subprocess.check_call(["mount", "-o", "remount,size=%dk" % (size_k + 512), vol])
            t_back = p.until(200, 5)
            t_ok, _ = wait_healthz(d, 200)
            for _ in range(20):             # it stays up, not one lucky batch
                assert p.post() == 200
            assert t_back - t_fix < 5 * SLOW, t_back - t_fix
            n = no_200_without_a_row(d, p)
            figure("disk full, +512 KiB", "503 from %.1f s after the disk filled; 200 "
                   "again %.2f s after the tmpfs grew by 512 KiB, /healthz ok %.2f s "
                   "after; %d acknowledged, none lost"
                   % (t_503 - t_fill, t_back - t_fix, t_ok - t_fix, n))
    finally:
        subprocess.run(["umount", "-l", vol])
        shutil.rmtree(d.tmp, ignore_errors=True)    # the mount point kept it


# -- two daemons, one database -------------------------------------------------

def test_second_daemon_on_the_same_database_refuses_to_start():
    with Daemon() as first:
        assert first.post_json(payment_body("4601")).status == 200
        second = Daemon(start=False, config={"database": first.db_path})
        try:
            second.start(wait=False)
            rc = second.wait(10)
            assert rc == 1, second.log()
            log = second.log()
            assert ("'%s' is in use by another cfhookd (pid %d, lock '%s.lock')"
                    % (first.db_path, first.proc.pid, first.db_path)) in log, log
            second.proc = None
            second.logf.close()
        finally:
            second.close()
        assert first.post_json(payment_body("4602")).status == 200
        st, body = healthz(first)
        assert st == 200, body
        assert first.rows("SELECT count(*) FROM events")[0][0] == 2
        # once the first stopped, a start works (the lock went with it)
        first.stop()
        again = Daemon(start=False, config={"database": first.db_path})
        with again:
            again.start()
            assert again.post_json(payment_body("4603")).status == 200
        assert first.rows("SELECT count(*) FROM events")[0][0] == 3


# -- the lock held past the timeout --------------------------------------------

def test_lock_held_past_the_timeout():
    """Another connection holds the write lock for 10 s: a webhook is
    answered 503 after about 5 s, and so is one that arrived while the
    first waited (the wait is the batch's, counted from its oldest item)."""
    with Daemon() as d:
        con = sqlite3.connect(d.db_path, isolation_level=None, timeout=1)
        con.execute("BEGIN IMMEDIATE")
        took = {}

        def send(i, delay):
            time.sleep(delay)
            t0 = time.monotonic()
            r = d.post_json(payment_body("470%d" % i))
            took[i] = (r.status, time.monotonic() - t0)

        threads = [threading.Thread(target=send, args=(i, 0.5 * i)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(10)
        con.execute("ROLLBACK")
        for t in threads:
            t.join()
        con.close()
        for i, (status, secs) in sorted(took.items()):
            assert status == 503, took
            assert secs < (BUSY_TIMEOUT_S + 1.5) * SLOW, took
        assert took[0][1] >= BUSY_TIMEOUT_S - 0.5, took
        assert d.post_json(payment_body("4709")).status == 200
        figure("lock held 10 s", "503 after %s s (sent 0, 0.5, 1, 1.5 s into it)"
               % ", ".join("%.1f" % took[i][1] for i in sorted(took)))


# -- cfhookd --check ------------------------------------------------------------

def check(d):
    p = subprocess.run([binary(), "-c", d.conf_path, "--check"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30 * SLOW)
    return p.returncode, p.stdout.decode(errors="replace")


def listing(path):
    return sorted((n, os.stat(os.path.join(path, n)).st_mtime_ns) for n in os.listdir(path))


def test_check_looks_at_the_database_and_forward_target():
    """--check fails on a database the daemon could not use, and on a forward
    target it could not reach, and creates or changes nothing either way."""
    with Daemon(start=False) as d:
        rc, out = check(d)
        assert rc == 0 and "(to be created)" in out, out
        assert not os.path.exists(d.db_path)
        d.start()
        d.post_json(payment_body("4801"))
        rc, out = check(d)                  # while it runs (ExecReload)
        assert rc == 0 and "schema version %d" % schema_version() in out, out
        d.stop()
        before = listing(d.tmp)
        con = sqlite3.connect(d.db_path)
        con.execute("PRAGMA user_version = 99")
        con.close()
        before = listing(d.tmp)
        rc, out = check(d)
        assert rc == 1 and "schema version 99 is newer" in out, out
        assert listing(d.tmp) == before
        os.unlink(d.db_path)
        con = sqlite3.connect(d.db_path)
        con.execute("CREATE TABLE theirs (x)")
        con.close()
        rc, out = check(d)
        assert rc == 1 and "not a cfhookd database" in out, out
        os.unlink(d.db_path)
        d.config["database"] = os.path.join(d.tmp, "missing", "events.db")
        d.write_config()
        rc, out = check(d)
        assert rc == 1 and "does not exist" in out, out
        assert not os.path.exists(os.path.join(d.tmp, "missing"))
        d.config["database"] = d.db_path
        d.config["forward"] = "unix:" + os.path.join(d.tmp, "nodir", "c.sock")
        d.write_config()
        rc, out = check(d)
        assert rc == 1 and "the directory of socket" in out, out
        d.config["forward"] = "hook:" + d.conf_path         # not executable
        d.write_config()
        rc, out = check(d)
        assert rc == 1 and "is not executable" in out, out
        d.config["forward"] = "unix:" + os.path.join(d.tmp, "c.sock")   # may come later
        d.write_config()
        rc, out = check(d)
        assert rc == 0, out


def test_check_refuses_an_unwritable_database():
    need_root("make the database file immutable")
    with Daemon() as d:
        d.stop()
        if not chattr(d.db_path, "+i"):
            raise Skip("the file system of %s has no immutable flag" % d.tmp)
        try:
            rc, out = check(d)
            assert rc == 1 and "not writable" in out, out
        finally:
            chattr(d.db_path, "-i")
        rc, out = check(d)
        assert rc == 0, out
        # the record of started deliveries beside it (forwarding writes it)
        marks = d.db_path + ".inflight"
        open(marks, "a").close()
        assert chattr(marks, "+i")
        try:
            rc, out = check(d)
            assert rc == 1 and "'%s': not writable" % marks in out, out
        finally:
            chattr(marks, "-i")
        rc, out = check(d)
        assert rc == 0, out


if __name__ == "__main__":
    import harness
    failed = 0
    for name, fn in sorted(((n, f) for n, f in globals().items() if n.startswith("test_")),
                           key=lambda nf: nf[1].__code__.co_firstlineno):
        try:
            fn()
            print("ok   " + name)
        except harness.Skip as e:
            print("skip %s - %s" % (name, e))
        except Exception:
            import traceback
            traceback.print_exc()
            print("FAIL " + name)
            failed += 1
    sys.exit(1 if failed else 0)
