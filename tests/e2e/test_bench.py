"""make bench's instruments against the real daemon, so they cannot rot: the
load generator's counts must equal what the database holds (new = rows,
duplicates = re-sent ids, every body signed right), its rate limit must
limit, and the spawn and consumer references must do what they claim."""

import os
import socket
import subprocess
import tempfile
import time

from harness import BUILD, SANITIZED, SLOW, TOP, Daemon, free_port

BENCH = os.path.join(BUILD, "bench")


def tool(name):
    """A tests/bench tool of this build, built by make if it is missing
    (make test builds them; a bare 'make all unit' does not)."""
    path = os.path.join(BENCH, name)
    if not os.access(path, os.X_OK):
        cmd = ["make", "--no-print-directory", "-C", TOP, "BUILD=" + BUILD, "bench-tools"]
        if SANITIZED:
            cmd.append("FLAVOUR=asan")
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.returncode == 0, p.stdout.decode(errors="replace")[-3000:]
    return path


def run_tagged(cmd, tag, expect_rc=0):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120 * SLOW)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == expect_rc, (p.returncode, out, err)
    lines = [l for l in out.splitlines() if l.startswith(tag + " ")]
    if expect_rc != 0:
        return err
    assert len(lines) == 1, out
    kv = {}
    for item in lines[0].split()[1:]:
        k, _, v = item.partition("=")
        kv[k] = float(v) if "." in v else int(v)
    return kv


def loadgen(d, *args, secret_file=None):
    cmd = [tool("loadgen"), "-q", "-s", secret_file or d.secret_path] + list(args)
    if d.unix_path:
        cmd += ["-U", d.unix_path, "http://localhost/webhooks/cashfree"]
    else:
        cmd += ["http://127.0.0.1:%d/webhooks/cashfree" % d.port]
    return run_tagged(cmd, "LOADGEN")


def test_counts_equal_the_database():
    with Daemon(config={"log_level": "warning"}) as d:
        lg = loadgen(d, "-t", "2", "-c", "4", "-n", "400", "-D", "0.3", "-f", "0.3")
        assert lg["requests"] == 400 and lg["conns"] == 8, lg
        assert lg["errors"] == 0 and lg["non200"] == 0 and lg["ok_other"] == 0, lg
        assert lg["new"] + lg["duplicate"] == 400, lg
        # a duplicate re-sends an acknowledged id: it is answered duplicate
        assert lg["duplicate"] == lg["sent_dup"] and 40 <= lg["sent_dup"] <= 200, lg
        assert lg["sent_form"] > 0, lg
        rows = d.rows("SELECT count(*), sum(deliveries) FROM events")[0]
        assert rows[0] == lg["new"], (rows[0], lg)
        assert rows[1] == 400, rows[1]          # every request is one delivery
        dup_rows = d.rows("SELECT count(*), sum(deliveries - 1) FROM events"
                          " WHERE deliveries > 1")[0]
        assert dup_rows[1] == lg["duplicate"], (dup_rows, lg)
        kinds = dict(d.rows("SELECT type, count(*) FROM events GROUP BY type"))
        assert set(kinds) == {"PAYMENT_SUCCESS_WEBHOOK", "PAYMENT_LINK_EVENT"}, kinds
        forms = d.rows("SELECT count(*) FROM events WHERE type = 'PAYMENT_LINK_EVENT'"
                       " AND content_type LIKE 'application/x-www-form-urlencoded%'")[0][0]
        assert forms == kinds["PAYMENT_LINK_EVENT"], (forms, kinds)
        # the JSON body has the sample's size and the id as cf_payment_id
        for key, pid, size, order in d.rows(
                "SELECT event_key, cf_payment_id, length(body), order_id FROM events"
                " WHERE type = 'PAYMENT_SUCCESS_WEBHOOK' LIMIT 5"):
            assert key == "PAYMENT_SUCCESS_WEBHOOK:" + pid and pid.isdigit(), key
            assert 1100 <= size <= 1400 and order == "bench_" + pid, (size, order)
        for key, pid in d.rows("SELECT event_key, cf_payment_id FROM events"
                               " WHERE type = 'PAYMENT_LINK_EVENT' LIMIT 5"):
            assert key == "PAYMENT_LINK_EVENT:bench_link_%s:PAID:%s" % (pid, pid), key
        # latency figures are ordered and real
        assert 0 < lg["p50_us"] <= lg["p90_us"] <= lg["p99_us"] <= lg["max_us"], lg


def test_unix_socket_and_rate_limit():
    with Daemon(listen="unix", config={"log_level": "warning"}) as d:
        lg = loadgen(d, "-t", "2", "-c", "4", "-d", "1", "-r", "200")
        # the schedule allows 200 in the second, plus one per thread started
        # at the deadline; the lower bound is loose (a noisy machine)
        assert 60 <= lg["requests"] <= 202, lg
        assert lg["errors"] == 0 and lg["new"] == lg["requests"], lg
        assert d.rows("SELECT count(*) FROM events")[0][0] == lg["new"]


def test_failures_are_counted_not_hidden():
    with Daemon(config={"log_level": "warning"}) as d:
        wrong = os.path.join(d.tmp, "wrong-secret")
        with open(wrong, "w") as f:
            f.write("# comment, then a blank line\n\ncfhookd-TEST-ONLY-wrong\n")
        lg = loadgen(d, "-t", "1", "-c", "2", "-n", "30", secret_file=wrong)
        assert lg["new"] == 0 and lg["non200"] == 30 and lg["status_401"] == 30, lg
        assert d.rows("SELECT count(*) FROM events")[0][0] == 0
        port = free_port()          # nothing listens there
        err = run_tagged([tool("loadgen"), "-s", d.secret_path, "-n", "5",
                          "http://127.0.0.1:%d/webhooks/cashfree" % port], "LOADGEN",
                         expect_rc=2)
        assert "Connection refused" in err, err
        err = run_tagged([tool("loadgen"), "-s", d.secret_path, "-D", "2", "http://x/"],
                         "LOADGEN", expect_rc=1)
        assert "bad value for -D" in err, err


def test_sign_cost_checks_its_signature():
    with Daemon(start=False) as d:
        sc = run_tagged([tool("loadgen"), "-s", d.secret_path, "--sign-cost", "2000"],
                        "SIGNCOST")
    assert sc["requests"] == 2000 and sc["body_bytes"] > 1100, sc
    assert 0 < sc["hmac_ns"] and 0 < sc["build_sign_ns"], sc


def test_spawnrate_counts_runs_and_failures():
    ok = run_tagged([tool("spawnrate"), "-p", "2", "-n", "20", "/bin/true"], "SPAWNRATE")
    assert ok["spawns"] == 20 and ok["failures"] == 0 and ok["rate"] > 0, ok
    bad = run_tagged([tool("spawnrate"), "-n", "5", "/bin/false"], "SPAWNRATE")
    assert bad["spawns"] == 5 and bad["failures"] == 5, bad


def test_spawnrate_children_run_as_hooks_do():
    """-N: the nice value the bench gives the children beside the daemon
    (cfhookd's HOOK_NICE); it must reach them, or that reference is wrong."""
    with tempfile.TemporaryDirectory() as tmp:
        script, out = os.path.join(tmp, "nice.sh"), os.path.join(tmp, "nice")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ncut -d' ' -f19 /proc/$$/stat > %s\n" % out)
        os.chmod(script, 0o755)
        base = os.getpriority(os.PRIO_PROCESS, 0)
        r = run_tagged([tool("spawnrate"), "-n", "1", "-N", "7", "-S", "3000", script],
                       "SPAWNRATE")
        assert r["spawns"] == 1 and r["failures"] == 0, r
        with open(out) as f:
            assert int(f.read()) == 7, "the child's nice value"
        assert base == os.getpriority(os.PRIO_PROCESS, 0)


def consume(path, lines, conns=1):
    """Sends `lines` envelopes on each of `conns` connections; returns the
    answers read on each."""
    socks = []
    for _ in range(conns):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SLOW)
        # the file appears at bind(), a moment before listen()
        deadline = time.monotonic() + 10 * SLOW
        while True:
            try:
                s.connect(path)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "consumer never listened"
                time.sleep(0.01)
        socks.append(s)
    answers = []
    for s in socks:
        s.sendall(b"".join(b'{"id":%d}\n' % i for i in range(lines)))
        got = b""
        while got.count(b"\n") < lines:
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
        answers.append(got)
        s.close()
    return answers


def test_consumers_answer_every_line_in_order():
    with Daemon(start=False) as d:
        for fast in (False, True):
            path = os.path.join(d.tmp, "c%d.sock" % fast)
            proc = subprocess.Popen([tool("consumer")] + (["--fast"] if fast else []) + [path],
                                    stdout=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 10 * SLOW
                while not os.path.exists(path):
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.01)
                # the sequential one serves connections one after another
                assert consume(path, 50, conns=2) == [b"OK\n" * 50] * 2
            finally:
                proc.terminate()
                out = proc.communicate(timeout=10 * SLOW)[0].decode()
            assert "CONSUMER lines=100 connections=2" in out, out
            assert not os.path.exists(path)

