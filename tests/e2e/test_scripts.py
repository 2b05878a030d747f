"""The scripts/ that ship with cfhookd, run for real: cfhook-send against the
daemon, the example hook and the example consumer as forward targets, and
audit.sql against a database the daemon filled."""

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import time

from harness import SLOW, TOP, Daemon, Skip, binary, load_vectors, payment_body

SCRIPTS = os.path.join(TOP, "scripts")


def nasty_order(tmp):
    """Quotes, $(), backticks, a newline, a tab and a backslash; the $() would
    create tmp/pwned if anything ever ran it through a shell."""
    return "o'\"$(touch %s/pwned)`id`;\n\ttab\\x" % tmp


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def need(*tools):
    for t in tools:
        if shutil.which(t) is None:
            raise Skip("%s is not installed" % t)


def send(d, payload, *opts, url=None):
    """Runs scripts/cfhook-send on a payload (bytes, written to a file)."""
    path = os.path.join(d.tmp, "payload-%d" % time.monotonic_ns())
    with open(path, "wb") as f:
        f.write(payload)
    if url is None and d.port is not None:
        url = "http://127.0.0.1:%d/webhooks/cashfree" % d.port
    args = [os.path.join(SCRIPTS, "cfhook-send"), "-s", d.secret_path]
    if url is not None:
        args += ["-u", url]
    p = subprocess.run(args + list(opts) + [path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30 * SLOW)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_cfhook_send_json_signs_exact_bytes():
    need("openssl", "curl")
    with Daemon() as d:
        # no final newline, then one with a trailing newline: both bytes exact
        for pid, tail in (("9501", b""), ("9502", b"\n")):
            body = payment_body(pid) + tail
            rc, out, err = send(d, body)
            assert rc == 0 and out.startswith("HTTP 200"), (out, err)
            row = d.event("PAYMENT_SUCCESS_WEBHOOK:" + pid)
            assert row is not None
            stored = row["body"] if isinstance(row["body"], bytes) else row["body"].encode()
            assert stored == body
        # -H adds a header; the same payload again is a duplicate
        rc, out, err = send(d, payment_body("9501"), "-H", "x-webhook-attempt: 2")
        assert rc == 0 and '"duplicate"' in out, out
        # a wrong secret is refused, and the script says so with exit 1
        with open(d.secret_path, "w") as f:
            f.write("# rotated\n\n  some-other-secret  \n")
        rc, out, err = send(d, payment_body("9503"))
        assert rc == 1 and out.startswith("HTTP 401"), (out, err)
        assert "some-other-secret" not in out + err
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:9503") is None
        # -t sends a given (here ancient) timestamp: fine, tolerance is off by default
        d.write_secrets(d.secrets)
        rc, out, err = send(d, payment_body("9504"), "-t", "1617695238078")
        assert rc == 0, (out, err)


def test_cfhook_send_over_unix_socket():
    need("openssl", "curl")
    with Daemon(listen="unix") as d:
        rc, out, err = send(d, payment_body("9601"), "-U", d.unix_path)
        assert rc == 0 and out.startswith("HTTP 200"), (out, err)
        assert d.event("PAYMENT_SUCCESS_WEBHOOK:9601") is not None


def test_cfhook_send_form():
    need("curl", "python3", "openssl")
    case = [c for c in load_vectors() if c["name"] == "form_link_paid_sorted"][0]
    pairs = [p for p in case["body"].split("&") if not p.startswith("signature=")]
    form = "&".join(pairs).encode()
    with Daemon() as d:
        # --form: the header scheme over the exact bytes (the default)
        rc, out, err = send(d, form, "--form")
        assert rc == 0 and out.startswith("HTTP 200"), (out, err)
        rows = d.rows("SELECT type, content_type, body FROM events")
        assert len(rows) == 1 and rows[0][0] == "PAYMENT_LINK_EVENT", [tuple(r) for r in rows]
        assert rows[0][1] == "application/x-www-form-urlencoded"
        body = rows[0][2]
        assert (body if isinstance(body, bytes) else body.encode()) == form
        # --form-field: only the signature field, refused while the switch is off
        rc, out, err = send(d, form, "--form-field")
        assert rc == 1 and out.startswith("HTTP 401"), (out, err)
    with Daemon(config={"form_field_signature": "on"}) as d:
        rc, out, err = send(d, form, "--form-field")
        assert rc == 0 and out.startswith("HTTP 200"), (out, err)
        # the signature it appended is the one the vector carries
        body = d.rows("SELECT body FROM events")[0][0]
        body = body if isinstance(body, str) else body.decode()
        assert body.split("&signature=")[1] == case["body"].split("signature=")[1].split("&")[0]


def use_example_hook(d, state):
    """Points the daemon at the example hook with its state directory given
    by hook_env, as an operator would (no wrapper script)."""
    d.config["forward"] = "hook:" + os.path.join(SCRIPTS, "example-hook")
    d.config["hook_env"] = "SHOP_STATE_DIR=" + state


def fulfilled(state, name="fulfilment.log"):
    try:
        with open(os.path.join(state, name), encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def alerts(state):
    return fulfilled(state, "alerts.log")


LINK = ('{"data":{"cf_link_id":1,"link_id":"hook_link","link_status":"PAID",'
        '"link_currency":"INR","link_amount":"2.00","link_amount_paid":"2.00",'
        '"order":{"order_amount":"2.00","order_id":"CFPay_hook","transaction_id":9720,'
        '"transaction_status":"SUCCESS"}},"type":"PAYMENT_LINK_EVENT","version":1}')


def ctl(d, *args):
    p = subprocess.run([binary("cfhookctl"), "-c", d.conf_path] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_example_hook_is_idempotent_by_event_key():
    with Daemon(start=False) as d:
        state = os.path.join(d.tmp, "hook-state")
        use_example_hook(d, state)
        d.write_config()
        d.start()
        nasty = nasty_order(d.tmp)
        assert d.post_json(payment_body("9701", order_id=nasty, amount='"499.00"')).status \
            == 200
        assert d.post_json(payment_body("9702", order_id="o-failed", status="FAILED",
                                        type_="PAYMENT_FAILED_WEBHOOK")).status == 200
        # a Payment Link payment arrives twice (the link event and its twin
        # PAYMENT_SUCCESS_WEBHOOK): one fulfilment
        assert d.post_json(LINK).status == 200
        assert d.post_json(payment_body("9720", order_id="CFPay_hook", amount="2.00"
                                        )).status == 200
        wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'"
                                  )[0][0] == 4, what="all delivered")
        lines = fulfilled(state)
        assert len(lines) == 2, lines              # the order paid, the link paid
        link = [ln.split("\t") for ln in lines if "\tCFPay_hook\t" in ln]
        assert len(link) == 1 and link[0][4] == "PAYMENT_LINK_EVENT:hook_link:PAID:9720"
        lines = [ln for ln in lines if "\tCFPay_hook\t" not in ln]
        # 499.00 paid for an order of 2: one alert, naming the order
        al = alerts(state)
        assert len(al) == 1 and al[0].split("\t")[2] == "amount_mismatch", al
        assert al[0].split("\t")[1] == nasty.replace("\n", " ").replace("\t", " ")
        f = lines[0].split("\t")
        # the order id arrives byte for byte (tab and newline turned into blanks)
        assert f[1] == nasty.replace("\n", " ").replace("\t", " ") and f[2] == "499.00"
        assert f[4] == "PAYMENT_SUCCESS_WEBHOOK:9701"
        assert not os.path.exists(os.path.join(d.tmp, "pwned"))
        key_hash = hashlib.sha256(b"PAYMENT_SUCCESS_WEBHOOK:9701").hexdigest()
        with open(os.path.join(state, "done", key_hash), encoding="utf-8") as m:
            env = json.loads(m.read())        # the marker keeps the envelope
        assert env["order_id"] == nasty

        # delivered again (an operator's replay): the hook succeeds, fulfils nothing new
        eid = d.rows("SELECT id FROM events WHERE event_key = 'PAYMENT_SUCCESS_WEBHOOK:9701'"
                     )[0][0]
        ctl(d, "replay", str(eid))
        d.wait_log(r"already handled")
        wait_until(lambda: d.rows("SELECT forward_state FROM events WHERE id = ?", (eid,)
                                  )[0][0] == "done", what="the replay delivered")
        assert len(fulfilled(state)) == 2 and len(alerts(state)) == 1


def test_example_hook_run_by_hand():
    """The hook's own contract, without the daemon: twice the same key ->
    fulfilled once; only the event that paid the order is fulfilled; an
    alert once per order and set of flags; no key -> non-zero (cfhookd
    would retry)."""
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "cfhook-hook-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    try:
        env = {"PATH": "/usr/bin:/bin", "SHOP_STATE_DIR": tmp,
               "CFHOOK_EVENT_ID": "7", "CFHOOK_EVENT_KEY": "PAYMENT_SUCCESS_WEBHOOK:1",
               "CFHOOK_TYPE": "PAYMENT_SUCCESS_WEBHOOK", "CFHOOK_ORDER_ID": "o $x",
               "CFHOOK_AMOUNT": "1.00", "CFHOOK_CURRENCY": "INR", "CFHOOK_ATTEMPT": "1",
               "CFHOOK_ORDER_STATE": "PAID", "CFHOOK_ORDER_PAID_NOW": "1",
               "CFHOOK_ORDER_ATTENTION": ""}
        hook = os.path.join(SCRIPTS, "example-hook")

        def run(**kw):
            e = dict(env, **kw)
            p = subprocess.run([hook, e["CFHOOK_TYPE"], "1", "o $x"], env=e,
                               input=b'{"id":7}\n', stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
            assert p.returncode == 0, p.stderr
            return p

        for attempt in ("1", "2"):
            run(CFHOOK_ATTEMPT=attempt)
        assert len(fulfilled(tmp)) == 1
        assert fulfilled(tmp)[0].split("\t")[1] == "o $x"
        # the same payment again under another key (a link twin), a second
        # payment, a late failure: PAID already, nothing ships
        run(CFHOOK_EVENT_KEY="PAYMENT_LINK_EVENT:l:PAID:1", CFHOOK_ORDER_PAID_NOW="0")
        run(CFHOOK_EVENT_KEY="PAYMENT_SUCCESS_WEBHOOK:2", CFHOOK_ORDER_PAID_NOW="0",
            CFHOOK_ORDER_ATTENTION="double_payment")
        run(CFHOOK_EVENT_KEY="PAYMENT_FAILED_WEBHOOK:3", CFHOOK_ORDER_PAID_NOW="0",
            CFHOOK_TYPE="PAYMENT_FAILED_WEBHOOK", CFHOOK_ORDER_ATTENTION="double_payment")
        p = run(CFHOOK_EVENT_KEY="PAYMENT_FAILED_WEBHOOK:4", CFHOOK_ORDER_PAID_NOW="0",
                CFHOOK_TYPE="PAYMENT_FAILED_WEBHOOK",
                CFHOOK_ORDER_ATTENTION="double_payment,late_failure")
        assert b"needs attention: double_payment,late_failure" in p.stderr
        assert len(fulfilled(tmp)) == 1
        assert [a.split("\t")[2] for a in alerts(tmp)] == \
            ["double_payment", "double_payment,late_failure"]
        del env["CFHOOK_EVENT_KEY"]
        p = subprocess.run([hook], env=env, input=b"", stderr=subprocess.PIPE, timeout=10)
        assert p.returncode != 0 and b"CFHOOK_EVENT_KEY" in p.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_example_consumer_receives_envelopes():
    with Daemon(start=False) as d:
        sock = os.path.join(d.tmp, "consumer.sock")
        seen_db = os.path.join(d.tmp, "seen.db")
        out_path = os.path.join(d.tmp, "consumer.out")
        out = open(out_path, "wb")
        consumer = subprocess.Popen(["python3", os.path.join(SCRIPTS, "example-consumer"), sock,
                                     "--db", seen_db], stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: os.path.exists(sock), what="the consumer's socket")
            d.config["forward"] = "unix:" + sock
            d.write_config()
            d.start()
            for pid, order in (("9801", "ord-1"), ("9802", "ord-2"), ("9803", "ord-1")):
                # amount 2 = the order's amount: no amount_mismatch
                assert d.post_json(payment_body(pid, order_id=order, amount="2")).status == 200
            wait_until(lambda: d.rows("SELECT count(*) FROM events WHERE forward_state = 'done'"
                                      )[0][0] == 3, what="three deliveries")
            eid = d.rows("SELECT id FROM events WHERE event_key = ?",
                         ("PAYMENT_SUCCESS_WEBHOOK:9801",))[0][0]
            ctl(d, "replay", str(eid))
            wait_until(lambda: b"already processed" in open(out_path, "rb").read(),
                       what="the consumer to see the repeat")
            text = open(out_path, "rb").read().decode()
            # ord-1 was paid twice: fulfilled once (order_paid_now), and
            # the second payment raises double_payment.
            assert text.count("fulfil: order 'ord-1'") == 1, text
            assert text.count("fulfil: order 'ord-2'") == 1, text
            assert "attention: order 'ord-1': double_payment" in text, text
            assert "attention: order 'ord-2'" not in text, text
            con = sqlite3.connect(seen_db)
            keys = sorted(r[0] for r in con.execute("SELECT event_key FROM seen"))
            con.close()
            assert keys == ["PAYMENT_SUCCESS_WEBHOOK:%s" % p for p in ("9801", "9802", "9803")]
        finally:
            consumer.terminate()
            consumer.wait(10)
            out.close()


def audit_sections(text):
    """'== title ==' -> the lines under it."""
    sections, cur = {}, None
    for line in text.splitlines():
        if line.startswith("== ") and line.endswith(" =="):
            cur = line[3:-3]
            sections[cur] = []
        elif cur is not None and line.strip():
            sections[cur].append(line)
    return sections


def run_audit(d, sql, tz):
    p = subprocess.run(["sqlite3", "-bail", "-readonly", "-header", "-column", d.db_path],
                       input=sql, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30 * SLOW, env=dict(os.environ, TZ=tz))
    err = p.stderr.decode()
    assert p.returncode == 0 and err == "", err
    return audit_sections(p.stdout.decode())


def test_audit_sql_runs_clean_on_a_daemon_filled_database():
    need("sqlite3")
    with Daemon(config={"form_field_signature": "on"}) as d:
        for c in load_vectors():
            if c["expect"] == "accept" and c["name"] in ("json_payment_link_event",
                                                        "form_link_paid_sorted",
                                                        "json_amount_170_00_raw_text",
                                                        "json_refund_status_webhook"):
                assert d.post_vector(c).status == 200, c["name"]
        posts = [
            payment_body("9901", order_id="twice", amount="2"),
            payment_body("9902", order_id="twice", amount="2"),       # paid twice
            payment_body("9903", order_id="short", amount="1.50"),    # order_amount is 2
            payment_body("9904", order_id="fine", amount="2.00"),
            payment_body("9905", order_id="x", type_="PAYMENT_FAILED_WEBHOOK", status="FAILED"),
            payment_body("9906", order_id="fine", type_="PAYMENT_FAILED_WEBHOOK",
                         status="FAILED"),                             # after PAID
            LINK.replace("hook_link", "pending_link").replace("CFPay_hook", "CFPay_pend")
                .replace("SUCCESS", "PENDING").encode(),               # not paid
            b'{"type":"ODD","v":"\xff"}',                             # a BLOB body
        ]
        for b in posts:
            assert d.post_json(b).status == 200
        d.post_json(posts[0])                                          # a re-delivery
        with open(os.path.join(SCRIPTS, "audit.sql"), "rb") as f:
            sql = f.read()
        s = run_audit(d, sql, "UTC")
        assert len(s) == 12, list(s)
        paid_day = [ln for ln in s["Paid orders per day, last 30 days (order ledger)"]
                    if "INR" in ln]
        assert len(paid_day) == 1, paid_day
        # the 170.00 vector, the JSON and form links, twice, short, fine
        assert paid_day[0].split()[1:4] == ["INR", "6", "1"], paid_day
        twice = s["Orders paid twice or more (double_payment: refund all but one)"]
        assert len(twice) == 3, twice             # header, rule, one order
        assert twice[2].split()[:4] == ["twice", "2", "9901", "9902"], twice
        mism = "\n".join(s["Amount mismatches: paid amount vs order amount (order ledger)"])
        assert "short" in mism and "1.50" in mism, mism
        assert "fine" not in mism and "twice" not in mism, mism
        late = "\n".join(s["Late failures: FAILED or USER_DROPPED after PAID (never "
                           "un-fulfil)"])
        assert "fine" in late and "PAYMENT_FAILED_WEBHOOK:9906" in late, late
        unpaid = "\n".join(s["Orders not paid, last 7 days (failed, dropped or pending)"])
        assert "x " in unpaid and "CFPay_pend" in unpaid and "twice" not in unpaid, unpaid
        redelivered = "\n".join(s["Delivered more than once by Cashfree (retries, dashboard "
                                  "resends)"])
        assert "PAYMENT_SUCCESS_WEBHOOK:9901" in redelivered
        link = s["Payment Link events: paid vs link and order"]
        ps11 = [ln for ln in link if "payment_ps11" in ln]
        assert len(ps11) == 1 and "PARTIALLY_PAID" in ps11[0] and ps11[0].rstrip().endswith("ok"), link
        pend = [ln for ln in link if "pending_link" in ln]
        assert len(pend) == 1 and pend[0].rstrip().endswith("order not paid"), link
        form_link = [ln for ln in link if "cfhook_link_paid_01" in ln]
        assert len(form_link) == 1 and " PAID " in form_link[0], link
        today = s["Payments received today"]
        assert "9904" in "\n".join(today) and "9905" not in "\n".join(today)
        row = [ln for ln in today if " fine " in ln]
        assert re.search(r" \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", row[0]), row
        assert s["Stuck: pending delivery for more than 15 minutes"] == []
        # the same in India time: offsets written out, the day cut there
        ist = run_audit(d, sql, "Asia/Kolkata")
        row = [ln for ln in ist["Payments received today"] if " fine " in ln]
        assert re.search(r" \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:30 ", row[0]), row
        # and every statement also runs on its own (copied into sqlite3)
        stmts = [x for x in split_statements(sql.decode()) if x.strip()]
        assert len(stmts) == 12, len(stmts)
        for st in stmts:
            p = subprocess.run(["sqlite3", "-bail", "-readonly", d.db_path, st],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW)
            assert p.returncode == 0 and p.stderr == b"", (st, p.stderr)


def split_statements(sql):
    """The SQL statements of audit.sql: comments and dot-commands dropped,
    split at ';' ending a line."""
    out, cur = [], []
    for line in sql.splitlines():
        if line.startswith(".") or line.lstrip().startswith("--"):
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(cur))
            cur = []
    return out


def test_installed_scripts_work():
    """The copies `make install` puts in share/cfhookd and share/doc/cfhookd/
    examples (paths rewritten for PREFIX=/usr) still run: cfhook-send signs
    and posts, the example hook fulfils once, the consumer answers."""
    need("openssl", "curl")
    from test_units import installed_tree
    root = installed_tree("/usr")
    try:
        send_copy = os.path.join(root, "usr/share/cfhookd/cfhook-send")
        hook_copy = os.path.join(root, "usr/share/doc/cfhookd/examples/example-hook")
        consumer_copy = os.path.join(root, "usr/share/doc/cfhookd/examples/example-consumer")
        with Daemon() as d:
            payload = os.path.join(d.tmp, "payload")
            with open(payload, "wb") as f:
                f.write(payment_body("9911"))
            p = subprocess.run([send_copy, "-s", d.secret_path, "-u",
                                "http://127.0.0.1:%d/webhooks/cashfree" % d.port, payload],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW)
            assert p.returncode == 0 and p.stdout.startswith(b"HTTP 200"), p
            assert d.event("PAYMENT_SUCCESS_WEBHOOK:9911") is not None
        state = os.path.join(root, "hook-state")
        env = {"PATH": "/usr/bin:/bin", "SHOP_STATE_DIR": state,
               "CFHOOK_EVENT_ID": "1", "CFHOOK_EVENT_KEY": "PAYMENT_SUCCESS_WEBHOOK:9911",
               "CFHOOK_TYPE": "PAYMENT_SUCCESS_WEBHOOK", "CFHOOK_ORDER_ID": "o-1",
               "CFHOOK_AMOUNT": "1.00", "CFHOOK_CURRENCY": "INR", "CFHOOK_ATTEMPT": "1",
               "CFHOOK_ORDER_STATE": "PAID", "CFHOOK_ORDER_PAID_NOW": "1"}
        for _ in range(2):
            p = subprocess.run([hook_copy, "PAYMENT_SUCCESS_WEBHOOK", "9911", "o-1"], env=env,
                               input=b'{"id":1}\n', stdout=subprocess.PIPE, timeout=10 * SLOW)
            assert p.returncode == 0, p
        assert len(fulfilled(state)) == 1
        p = subprocess.run(["python3", consumer_copy, "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10 * SLOW)
        assert p.returncode == 0 and p.stdout.startswith(b"usage:"), p.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)
