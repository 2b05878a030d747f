"""The contract checked from outside, as a stranger would: DESIGN's config
table and --check, every HTTP-table row and its precedence, odd JSON and form
bodies, header variants, number and id text, event_key formats, the stored
columns byte for byte, forward_state, and the log's hygiene.

Each case asserts what DESIGN and the spec (sections 2, 4, 5, 8, 11) say;
where they are silent, what a payment operator would expect (noted inline)."""

import atexit
import base64
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse

from harness import SECRET, SLOW, Daemon, binary, now_ms, payment_body, sign_form, sign_json

JSON_CT = "application/json"
FORM_CT = "application/x-www-form-urlencoded"


# -- helpers -----------------------------------------------------------------

def raw_rows(d, where="1", args=()):
    """Rows as dicts with every text column as bytes (text_factory=bytes), so
    the stored body is compared byte for byte."""
    con = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True, timeout=10)
    con.text_factory = bytes
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM events WHERE " + where + " ORDER BY id",
                                             args)]
    finally:
        con.close()


def row_by_key(d, key):
    # bound as text: a bytes parameter is a BLOB and never equals TEXT
    if isinstance(key, bytes):
        key = key.decode()
    r = raw_rows(d, "event_key = ?", (key,))
    assert len(r) <= 1
    return r[0] if r else None


def sha_key(type_, body):
    return "%s:sha256:%s" % (type_, hashlib.sha256(body).hexdigest())


def txt(v):
    return None if v is None else v.decode()


def post_signed(d, body, ct=JSON_CT, extra=None, ts=None):
    ts = str(now_ms()) if ts is None else ts
    h = {"Content-Type": ct, "x-webhook-timestamp": ts,
         "x-webhook-signature": sign_json(SECRET, ts, body)}
    h.update(extra or {})
    return d.post(body, h)


def form_sig_bytes(secret, body):
    """Form signature (spec 5.2) over a raw body that may hold any bytes:
    decode like WHATWG (latin-1 keeps bytes), sort by key bytes, join values."""
    pairs = urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True,
                                   encoding="latin-1", errors="strict")
    items = sorted((k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs if k != "signature")
    msg = b"".join(v for _, v in items)
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def with_form_sig(body, secret=SECRET):
    return body + b"&signature=" + urllib.parse.quote(form_sig_bytes(secret, body), safe="").encode()


def post_form_raw(d, body, ct=FORM_CT):
    return d.post(body, {"Content-Type": ct})


def check(conf_text, secret_lines=(SECRET,), secret_mode=0o600, name="c.conf"):
    """Runs cfhookd --check on a config written to a temp dir; returns
    (exit status, stdout+stderr). SECRET_PATH in the text is replaced, and
    the directories --check wants to exist (the database's, a forward
    socket's: /var/lib/cfhookd/, /run/shop/) are moved into the temp dir."""
    tmp = tempfile.mkdtemp(prefix="cfhookd-contract-")
    atexit.register(shutil.rmtree, tmp, True)  # no temp dirs left behind
    sp = os.path.join(tmp, "secret")
    with open(sp, "w") as f:
        f.write("".join(s + "\n" for s in secret_lines))
    os.chmod(sp, secret_mode)
    text = conf_text if isinstance(conf_text, bytes) else conf_text.encode()
    text = text.replace(b"SECRET_PATH", sp.encode())
    for d in ("/var/lib/cfhookd/", "/run/shop/"):
        here = os.path.join(tmp, d.strip("/").replace("/", "-"))
        os.mkdir(here)
        text = text.replace(d.encode(), here.encode() + b"/")
    cp = os.path.join(tmp, name)
    with open(cp, "wb") as f:
        f.write(text)
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    p = subprocess.run([binary(), "-c", cp, "--check"], capture_output=True, env=env,
                       timeout=30 * SLOW)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace"), cp


LINK = ('{"data":{"cf_link_id":1,"link_id":"%s","link_status":"PAID","link_currency":"INR",'
        '"order":{"order_id":"CFPay_%s","order_amount":"55.00",%s"transaction_status":"SUCCESS"}},'
        '"type":"PAYMENT_LINK_EVENT","version":1,"event_time":"2021-08-18T12:55:06+05:30"}')


# -- configuration -----------------------------------------------------------

ALL_DEFAULTS = """# every key of DESIGN's table, each at its documented default
listen = 127.0.0.1:8080
webhook_path = /webhooks/cashfree
secret_file = SECRET_PATH
database = /var/lib/cfhookd/events.db
tolerance = 0
max_body = 262144
forward = none
forward_timeout = 30
forward_concurrency = 4
forward_max_attempts = 12
forward_backoff = 2
durability = full
log_level = info
"""


def test_every_design_key_at_its_default_passes_check():
    rc, out, _ = check(ALL_DEFAULTS)
    assert rc == 0, out
    assert "configuration ok" in out, out
    # the other documented forms of values
    for extra in ("listen = [::1]:8080", "listen = unix:/run/cfhookd/http.sock",
                  "durability = normal", "log_level = error", "log_level = warning",
                  "log_level = debug", "tolerance = 300", "forward = unix:/run/shop/c.sock",
                  "forward = hook:/bin/true"):
        key = extra.split("=")[0].strip()
        text = "".join(l + "\n" for l in ALL_DEFAULTS.splitlines()
                       if not l.startswith(key + " ")) + extra + "\n"
        rc, out, _ = check(text)
        assert rc == 0, (extra, out)
    # a UTF-8 byte order mark from an editor is not part of the first key
    rc, out, _ = check(b"\xef\xbb\xbf" + ALL_DEFAULTS.encode())
    assert rc == 0, out


def test_check_exit_codes_and_file_line_messages():
    rc, out, cp = check(ALL_DEFAULTS + "bogus_key = 1\nmax_body = lots\ntolerance = -1\n")
    assert rc == 1, out
    n = len(ALL_DEFAULTS.splitlines())
    for line, word in ((n + 1, "bogus_key"), (n + 2, "max_body"), (n + 3, "tolerance")):
        assert "%s:%d:" % (cp, line) in out, (line, out)
        assert word in out
    for bad in ("durability = sometimes", "log_level = loud", "forward = smtp:x",
                "listen = localhost:8080", "listen = 127.0.0.1:0", "listen = 127.0.0.1:65536",
                "max_body = 0", "webhook_path = no-slash", "listen_mode = 0999",
                "forward_concurrency = 0", "no equals sign"):
        rc, out, cp = check("secret_file = SECRET_PATH\n" + bad + "\n")
        assert rc == 1, (bad, out)
        assert cp + ":2:" in out, (bad, out)
    # a repeated key is an error on its second line
    rc, out, cp = check("secret_file = SECRET_PATH\ntolerance = 1\ntolerance = 2\n")
    assert rc == 1 and cp + ":3:" in out, out
    # secrets: missing file, empty file
    rc, out, _ = check("secret_file = /nonexistent/cfhookd-secret\n")
    assert rc == 1, out
    rc, out, _ = check("secret_file = SECRET_PATH\n", secret_lines=("# only a comment",))
    assert rc == 1, out
    # no secret at all and no $CREDENTIALS_DIRECTORY
    rc, out, _ = check("log_level = info\n")
    assert rc == 1, out
    # a missing config file
    p = subprocess.run([binary(), "-c", "/nonexistent/cfhookd.conf", "--check"],
                       capture_output=True, timeout=30 * SLOW)
    assert p.returncode == 1, p
    # nothing of the secret leaks into the messages
    rc, out, _ = check("secret_file = SECRET_PATH\nbogus = 1\n")
    assert rc == 1 and SECRET not in out


# -- the HTTP table ----------------------------------------------------------

def test_http_table_rows_and_precedence():
    with Daemon(config={"max_body": "4096"}) as d:
        body = payment_body("7001")
        big = b"x" * 5000
        # 404 beats everything: other path with a wrong method, type and size
        assert d.request("PUT", "/other", big, {"Content-Type": "text/plain"}).status == 404
        assert d.request("POST", "/webhooks/cashfreeX", body, d.json_headers(body)).status == 404
        # 405 (with Allow: POST) beats 415 and 413
        r = d.request("DELETE", "/webhooks/cashfree", big, {"Content-Type": "text/plain"})
        assert r.status == 405 and r.headers.get("allow") == "POST", r
        # 415 beats 413
        assert d.request("POST", "/webhooks/cashfree", big, {"Content-Type": "text/plain"}).status == 415
        # 413 beats 401 (an unsigned oversized body)
        assert d.request("POST", "/webhooks/cashfree", big, {"Content-Type": JSON_CT}).status == 413
        # 401: bad, missing, stale(ish) signatures; nothing stored
        h = d.json_headers(body)
        h["x-webhook-signature"] = sign_json("wrong-secret", h["x-webhook-timestamp"], body)
        assert d.post(body, h).status == 401
        assert d.post(body, {"Content-Type": JSON_CT}).status == 401
        assert raw_rows(d) == []
        # 200, then 200 again for the same event (counted, not re-inserted)
        assert d.post_json(body).status == 200
        assert d.post_json(body, extra={"x-webhook-attempt": "2"}).status == 200
        assert len(raw_rows(d)) == 1 and raw_rows(d)[0]["deliveries"] == 2
        # 401 beats 503: with the database locked a bad signature is still 401
        con = sqlite3.connect(d.db_path, isolation_level=None, timeout=1)
        con.execute("BEGIN IMMEDIATE")
        try:
            h = d.json_headers(payment_body("7002"))
            h["x-webhook-signature"] = "A" * 43 + "="
            assert d.post(payment_body("7002"), h).status == 401
            r = d.post_json(payment_body("7003"))
            assert r.status == 503, r
        finally:
            con.execute("ROLLBACK")
            con.close()
        assert d.post_json(payment_body("7003")).status == 200
        # health and metrics
        r = d.request("GET", "/healthz")
        assert r.status == 200 and r.json()["status"] == "ok", r
        r = d.request("GET", "/metrics")
        assert r.status == 200
        for line in r.body.decode().splitlines():
            if line and not line.startswith("#"):
                assert line.startswith("cfhookd_"), line


# -- JSON bodies -------------------------------------------------------------

def test_json_body_shapes():
    with Daemon() as d:
        # BOM: the first non-blank byte is not '{' -> 401 (DESIGN HTTP table)
        assert post_signed(d, b"\xef\xbb\xbf" + payment_body("7101")).status == 401
        # not an object at all -> 401; empty body -> 401
        assert post_signed(d, b'[{"type":"PAYMENT_SUCCESS_WEBHOOK"}]').status == 401
        assert post_signed(d, b"").status == 401
        assert post_signed(d, b"   ").status == 401
        # leading JSON whitespace is fine and the body is kept with it
        b = b" \r\n\t" + payment_body("7102")
        assert post_signed(d, b).status == 200
        r = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7102")
        assert r is not None and r["body"] == b
        # \u0000 inside one string: the event is still read (that field alone
        # is unusable) rather than becoming UNKNOWN
        b = payment_body("7103").replace(b'"event_time"', b'"note":"a\\u0000b","event_time"')
        assert post_signed(d, b).status == 200
        r = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7103")
        assert r is not None and r["type"] == b"PAYMENT_SUCCESS_WEBHOOK" and r["body"] == b
        b = payment_body("7104", order_id="o\x00x")     # json.dumps writes \u0000
        assert b"\\u0000" in b
        assert post_signed(d, b).status == 200
        r = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7104")
        assert r is not None and r["order_id"] is None
        # 100k nested arrays: no crash, jansson's depth limit -> UNKNOWN, stored
        b = b'{"type":"PAYMENT_SUCCESS_WEBHOOK","a":' + b"[" * 100000 + b"]" * 100000 + b"}"
        assert post_signed(d, b).status == 200
        r = row_by_key(d, sha_key("UNKNOWN", b))
        assert r is not None and r["body"] == b
        # duplicate keys at depth: ambiguous -> stored as UNKNOWN (spec 11)
        b = (b'{"type":"PAYMENT_SUCCESS_WEBHOOK","data":{"payment":{"cf_payment_id":"7105",'
             b'"cf_payment_id":"7106"}}}')
        assert post_signed(d, b).status == 200
        assert row_by_key(d, sha_key("UNKNOWN", b)) is not None
        assert row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7105") is None
        # trailing bytes after the object: not an event -> UNKNOWN; trailing
        # whitespace is fine
        b = payment_body("7107") + b" x"
        assert post_signed(d, b).status == 200
        assert row_by_key(d, sha_key("UNKNOWN", b)) is not None
        assert post_signed(d, payment_body("7108") + b"\n ").status == 200
        assert row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7108") is not None
        # starts with '{' but is not JSON: 200 and stored as UNKNOWN
        b = b'{"type": PAYMENT_SUCCESS_WEBHOOK'
        assert post_signed(d, b).status == 200
        r = row_by_key(d, sha_key("UNKNOWN", b))
        assert r is not None and r["type"] == b"UNKNOWN"
        # the daemon is still healthy after all of it
        assert d.request("GET", "/healthz").status == 200


def test_amount_text():
    # DESIGN: the decimal text exactly as Cashfree sent it, a JSON number's
    # token as a string's content
    cases = [('"170.00"', "170.00"), ("170.00", "170.00"), ("1.80", "1.80"), ("0.1", "0.1"),
             ("1E2", "1E2"), ("-0", "-0"), ("0.30000000000000004", "0.30000000000000004"),
             ("2", "2"), ('"55.5"', "55.5"), ("100000000000000000000", "100000000000000000000"),
             ("1e400", "1e400")]
    with Daemon() as d:
        for i, (tok, want) in enumerate(cases):
            pid = str(7200 + i)
            b = payment_body(pid, amount=tok)
            assert post_signed(d, b).status == 200, tok
            r = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:" + pid)
            # a number jansson cannot hold (1e400) must not turn the event
            # into UNKNOWN: the id still keys it
            assert r is not None, tok
            assert txt(r["amount"]) == want, (tok, r["amount"], want)
            assert r["currency"] == b"INR" and r["body"] == b


def test_cf_payment_id_text_and_keys():
    # DESIGN: "store it as text, digits exactly as sent"; spec 4: never via double
    with Daemon() as d:
        for tok in ("1453002795", "1453002795.0", "-5", "9007199254740993",
                    "12345678901234567890", "99999999999999999999999999"):
            b = payment_body(tok, numeric_id=True)
            assert post_signed(d, b).status == 200, tok
            r = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:" + tok)
            assert r is not None, tok
            assert r["cf_payment_id"] == tok.encode() and r["type"] == b"PAYMENT_SUCCESS_WEBHOOK"
            assert r["order_id"] == b"order_1" and r["payment_status"] == b"SUCCESS"
        b = payment_body("5114910634577")
        assert post_signed(d, b).status == 200
        assert row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:5114910634577")["cf_payment_id"] == b"5114910634577"
        # an empty or null id identifies nothing: the body's hash keys it, and
        # two different id-less bodies stay two events
        for b in (payment_body(""), payment_body("null", numeric_id=True),
                  payment_body("", order_id="order_2")):
            assert post_signed(d, b).status == 200
            r = row_by_key(d, sha_key("PAYMENT_SUCCESS_WEBHOOK", b))
            assert r is not None and r["cf_payment_id"] is None
        # the same number as text and as a number is the same payment
        assert post_signed(d, payment_body("424242")).status == 200
        assert post_signed(d, payment_body("424242", numeric_id=True).replace(b'"event_time"', b'"v":1,"event_time"')).status == 200
        r = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:424242")
        assert r["deliveries"] == 2


def test_type_rules():
    with Daemon() as d:
        bodies = [b'{"data":{"payment":{"cf_payment_id":"7301"}}}',
                  b'{"type":5,"data":{"payment":{"cf_payment_id":"7302"}}}',
                  b'{"type":"","data":{"payment":{"cf_payment_id":"7303"}}}',
                  b'{"type":null,"data":{"payment":{"cf_payment_id":"7304"}}}']
        for b in bodies:
            assert post_signed(d, b).status == 200, b
            r = row_by_key(d, sha_key("UNKNOWN", b))
            assert r is not None and r["type"] == b"UNKNOWN", b
        # an x-idempotency-key header is recorded, never used as the key
        b = b'{"data":{"x":1}}'
        assert post_signed(d, b, extra={"x-idempotency-key": "idem-7305"}).status == 200
        r = row_by_key(d, sha_key("UNKNOWN", b))
        assert r is not None and r["idempotency_key"] == b"idem-7305"
        # any other signed type is stored as given; a settlement without
        # its status has no natural key: the body hash
        b = b'{"type":"SETTLEMENT_SUCCESS","data":{"settlement":{"settlement_id":1}}}'
        assert post_signed(d, b).status == 200
        assert row_by_key(d, sha_key("SETTLEMENT_SUCCESS", b))["type"] == b"SETTLEMENT_SUCCESS"


def test_payment_link_json_keys():
    with Daemon() as d:
        cases = [("L1", "", "PAYMENT_LINK_EVENT:L1:PAID:", None),
                 ("L2", '"transaction_id":null,', "PAYMENT_LINK_EVENT:L2:PAID:", None),
                 ("L3", '"transaction_id":"998",', "PAYMENT_LINK_EVENT:L3:PAID:998", b"998"),
                 ("L4", '"transaction_id":1021206,', "PAYMENT_LINK_EVENT:L4:PAID:1021206",
                  b"1021206"),
                 ("L5", '"transaction_id":123456789012345678901,',
                  "PAYMENT_LINK_EVENT:L5:PAID:123456789012345678901", b"123456789012345678901")]
        for link, tx, key, want in cases:
            b = (LINK % (link, link, tx)).encode()
            assert post_signed(d, b).status == 200, link
            r = row_by_key(d, key)
            assert r is not None, (link, key, [x["event_key"] for x in raw_rows(d)])
            assert r["cf_payment_id"] == want
            assert r["order_id"] == ("CFPay_" + link).encode()
            assert r["payment_status"] == b"SUCCESS"
            assert r["amount"] == b"55.00" and r["currency"] == b"INR"
        # link_status missing: not a link key -> the body hash
        b = (LINK % ("L6", "L6", '"transaction_id":5,')).replace('"link_status":"PAID",', "").encode()
        assert post_signed(d, b).status == 200
        assert row_by_key(d, sha_key("PAYMENT_LINK_EVENT", b)) is not None
        # a transaction_id that is there but unusable must not share the
        # "no transaction" key with L7's real no-transaction event
        b1 = (LINK % ("L7", "L7", "")).encode()
        b2 = (LINK % ("L7", "L7", '"transaction_id":{"id":1},')).encode()
        assert post_signed(d, b1).status == 200 and post_signed(d, b2).status == 200
        assert row_by_key(d, "PAYMENT_LINK_EVENT:L7:PAID:")["deliveries"] == 1
        assert row_by_key(d, sha_key("PAYMENT_LINK_EVENT", b2)) is not None


# -- form bodies -------------------------------------------------------------

FORM_BASE = [("type", "PAYMENT_LINK_EVENT"), ("link_id", "F1"), ("link_status", "PAID"),
             ("order_id", "CFPay_F"), ("transaction_id", "0"), ("transaction_status", "SUCCESS"),
             ("order_amount", "10.00"), ("link_currency", "INR")]


def form_with(tx, extra=()):
    p = list(FORM_BASE)
    p[4] = ("transaction_id", tx)
    return p + list(extra)


def post_form_hdr(d, body, ct=FORM_CT):
    """A form signed with the x-webhook-* headers over its raw bytes."""
    return post_signed(d, body, ct=ct)


def test_form_decoding_and_keys():
    """Forms verified by the header scheme (the default): how the body is
    decoded and keyed; the raw bytes are signed, so no grammar applies."""
    with Daemon() as d:
        # %zz stays as it is (WHATWG); the key shows it
        b = b"type=PAYMENT_LINK_EVENT&link_id=F%zz&link_status=PAID&transaction_id=7501"
        assert post_form_hdr(d, b).status == 200
        assert row_by_key(d, "PAYMENT_LINK_EVENT:F%zz:PAID:7501")["body"] == b
        # %00 in an id: the id is unusable -> body hash, not "no transaction"
        b = b"type=PAYMENT_LINK_EVENT&link_id=F2&link_status=PAID&transaction_id=75%0002"
        assert post_form_hdr(d, b).status == 200
        assert row_by_key(d, sha_key("PAYMENT_LINK_EVENT", b)) is not None
        assert row_by_key(d, "PAYMENT_LINK_EVENT:F2:PAID:") is None
        # keys differing only in case are different keys
        b = b"type=PAYMENT_LINK_EVENT&link_id=F3&Link_id=X&link_status=PAID&transaction_id=7503"
        assert post_form_hdr(d, b).status == 200
        assert row_by_key(d, "PAYMENT_LINK_EVENT:F3:PAID:7503") is not None
        # an empty key is a key like any other
        b = b"type=PAYMENT_LINK_EVENT&link_id=F4&link_status=PAID&transaction_id=7504&=v"
        assert post_form_hdr(d, b).status == 200
        assert row_by_key(d, "PAYMENT_LINK_EVENT:F4:PAID:7504") is not None
        # a repeated key -> 401 (spec 11), whatever signs it
        b2 = b"type=PAYMENT_LINK_EVENT&link_id=F5&link_id=F5&link_status=PAID"
        assert post_form_hdr(d, b2).status == 401
        # non-UTF-8 bytes in values: accepted, body stored byte-exact, the
        # undecodable field left out of the text columns
        b = (b"type=PAYMENT_LINK_EVENT&link_id=F6&link_status=PAID&transaction_id=7507"
             b"&order_id=%FF%FEraw\xff\xfe&note=caf\xe9")
        assert post_form_hdr(d, b).status == 200
        r = row_by_key(d, "PAYMENT_LINK_EVENT:F6:PAID:7507")
        assert r is not None and r["body"] == b and r["order_id"] is None
        # a charset parameter and any letter case in the content type
        for i, ct in enumerate(("application/x-www-form-urlencoded; charset=UTF-8",
                                "Application/X-WWW-Form-URLEncoded")):
            tx = str(7510 + i)
            body = urllib.parse.urlencode(form_with(tx)).encode()
            assert post_form_hdr(d, body, ct=ct).status == 200, ct
            r = row_by_key(d, "PAYMENT_LINK_EVENT:F1:PAID:" + tx)
            assert r["content_type"] == ct.encode()
        # a field-signed form is refused with form_field_signature off
        body = with_form_sig(urllib.parse.urlencode(form_with("7520")).encode())
        assert post_form_raw(d, body).status == 401
        assert "field_scheme_off" in d.log()
        assert row_by_key(d, "PAYMENT_LINK_EVENT:F1:PAID:7520") is None
        # only "signature=", or nothing at all: 401
        assert post_form_raw(d, b"signature=").status == 401
        assert post_form_raw(d, b"").status == 401


def test_form_field_scheme():
    """form_field_signature = on: the signature field (spec 5.2) proves a
    form, its fields are held to strict grammars (spec 11)."""
    with Daemon(config={"form_field_signature": "on"}) as d:
        # '+' vs %2B in the signature: a raw '+' decodes to a space and fails
        p = None
        for i in range(200):
            p = form_with(str(7400 + i))
            if "+" in sign_form(SECRET, p):
                break
        sig = sign_form(SECRET, p)
        body = urllib.parse.urlencode(p).encode()
        assert post_form_raw(d, body + b"&signature=" + sig.encode()).status == 401
        assert post_form_raw(d, body + b"&signature=" + urllib.parse.quote(sig, safe="").encode()).status == 200
        tx = p[4][1]
        r = row_by_key(d, "PAYMENT_LINK_EVENT:F1:PAID:" + tx)
        assert r is not None and r["cf_payment_id"] == tx.encode()
        assert r["content_type"] == FORM_CT.encode() and r["amount"] == b"10.00"
        # a repeated key (signature twice, or any other) -> 401 (spec 11)
        b = with_form_sig(urllib.parse.urlencode(form_with("7505")).encode())
        sig_part = b[b.index(b"&signature="):]
        assert post_form_raw(d, b + sig_part).status == 401
        # 300 fields, signed: accepted (a form is not refused for its size)
        p = form_with("7506", [("f%03d" % i, "v%d" % i) for i in range(292)])
        assert len(p) == 300
        assert d.post_form(p, field=True).status == 200
        assert row_by_key(d, "PAYMENT_LINK_EVENT:F1:PAID:7506") is not None
        # fields that fail their grammar: 401, nothing stored
        for bad in (b"type=PAYMENT_LINK_EVENT&link_id=F%zz&link_status=PAID&transaction_id=7601",
                    b"type=PAYMENT_LINK_EVENT&link_id=F7&link_status=PAID&transaction_id=76%0002",
                    b"type=PAYMENT_LINK_EVENT&link_id=F7&link_status=PAID&transaction_id=",
                    b"type=PAYMENT_LINK_EVENT&link_id=F7&link_status=PAID",
                    b"link_id=F7&link_status=EXPIRED"):
            assert post_form_raw(d, with_form_sig(bad)).status == 401, bad
        assert "form_fields" in d.log()
        assert not raw_rows(d, "event_key LIKE 'PAYMENT_LINK_EVENT:F7:%'")
        # the same form with the header scheme as well is read as signed bytes
        body = urllib.parse.urlencode(form_with("7520")).encode()
        assert post_form_hdr(d, body).status == 200
        assert row_by_key(d, "PAYMENT_LINK_EVENT:F1:PAID:7520") is not None


# -- headers -----------------------------------------------------------------

def test_header_variants():
    with Daemon() as d:
        ts = str(now_ms())
        b = payment_body("7601")
        h = {"Content-Type": JSON_CT, "X-WEBHOOK-Signature": sign_json(SECRET, ts, b),
             "x-Webhook-TIMESTAMP": ts}
        assert d.post(b, h).status == 200
        # both families present and disagreeing: x-webhook-* is the one used
        b = payment_body("7602")
        h = {"Content-Type": JSON_CT, "x-webhook-timestamp": ts,
             "x-webhook-signature": sign_json(SECRET, ts, b),
             "x-cashfree-timestamp": "1234567890", "x-cashfree-signature": "A" * 43 + "="}
        assert d.post(b, h).status == 200
        b = payment_body("7603")
        h = {"Content-Type": JSON_CT, "x-cashfree-timestamp": ts,
             "x-cashfree-signature": sign_json(SECRET, ts, b),
             "x-webhook-timestamp": "1234567890", "x-webhook-signature": "A" * 43 + "="}
        assert d.post(b, h).status == 401
        # x-cashfree-* alone are aliases
        h = {"Content-Type": JSON_CT, "x-cashfree-timestamp": ts,
             "x-cashfree-signature": sign_json(SECRET, ts, b)}
        assert d.post(b, h).status == 200
        # timestamp grammar: exactly 10 or 13 ASCII digits (leading zeros are
        # digits; tolerance is off by default)
        for t, want in (("0000000000001", 200), ("1746427759", 200), ("00000000001", 401),
                        ("000000000001", 401), ("00000000000001", 401), ("174642775973", 401),
                        ("17464277597330", 401), ("+746427759733", 401), ("1746427759.73", 401)):
            b = payment_body("76%s" % t.replace("+", "p").replace(".", "d"))
            r = post_signed(d, b, ts=t)
            assert r.status == want, (t, r)
        # missing or empty headers
        b = payment_body("7690")
        assert d.post(b, {"Content-Type": JSON_CT, "x-webhook-timestamp": ts}).status == 401
        assert d.post(b, {"Content-Type": JSON_CT, "x-webhook-signature": sign_json(SECRET, ts, b)}).status == 401
        assert d.post(b, {"Content-Type": JSON_CT, "x-webhook-timestamp": "",
                          "x-webhook-signature": sign_json(SECRET, "", b)}).status == 401
        assert raw_rows(d, "event_key = ?", ("PAYMENT_SUCCESS_WEBHOOK:7690",)) == []


def test_unsigned_headers_never_key_an_event():
    """DESIGN: other types are keyed by their own ids from the signed body;
    x-idempotency-key and x-webhook-version are recorded as received (when
    printable and at most 128 bytes) and decide nothing."""
    refund = ('{"type":"REFUND_STATUS_WEBHOOK","data":{"refund":{"cf_payment_id":12,'
              '"cf_refund_id":%d,"refund_id":"r","refund_status":"SUCCESS"}}}')
    with Daemon() as d:
        b = (refund % 880001).encode()
        keys = ["idem-ok_1=", "k" * 128, "k" * 129, "with space", "caf\xc3\xa9", None]
        for k in keys:
            extra = {"x-idempotency-key": k} if k is not None else {}
            r = post_signed(d, b, extra=extra)
            assert r.status == 200, k
        r = row_by_key(d, "REFUND_STATUS_WEBHOOK:880001:SUCCESS")
        assert r is not None and r["deliveries"] == len(keys)
        assert r["cf_payment_id"] == b"12" and r["idempotency_key"] == b"idem-ok_1="
        assert len(raw_rows(d)) == 1
        # recorded only when sane; the version header likewise
        for i, (k, want) in enumerate((("k" * 128, b"k" * 128), ("k" * 129, None),
                                       ("with space", b"with space"), ("tab\there", None))):
            bb = (refund % (880100 + i)).encode()
            assert post_signed(d, bb, extra={"x-idempotency-key": k,
                                             "x-webhook-version": "2025-01-01"}).status == 200
            r = row_by_key(d, "REFUND_STATUS_WEBHOOK:%d:SUCCESS" % (880100 + i))
            assert r["idempotency_key"] == want, (k[:20], r["idempotency_key"])
            assert r["webhook_version"] == b"2025-01-01"


# -- stored columns ----------------------------------------------------------

def test_stored_columns():
    with Daemon() as d:
        b = payment_body("7701", order_id="ord-7701/x", amount='"99.90"')
        t0 = now_ms()
        assert post_signed(d, b).status == 200
        t1 = now_ms()
        r = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7701")
        assert r["type"] == b"PAYMENT_SUCCESS_WEBHOOK" and r["cf_payment_id"] == b"7701"
        assert r["order_id"] == b"ord-7701/x" and r["payment_status"] == b"SUCCESS"
        assert r["amount"] == b"99.90" and r["currency"] == b"INR"
        assert r["event_time"] == b"2023-08-01T11:16:10+05:30"
        assert r["content_type"] == JSON_CT.encode() and r["body"] == b
        assert t0 - 1000 <= r["received_at"] <= t1 + 1000, (t0, r["received_at"], t1)
        assert r["last_seen_at"] == r["received_at"] and r["deliveries"] == 1
        assert r["forward_state"] == b"done" and r["forward_attempts"] == 0
        time.sleep(0.05)
        assert post_signed(d, b, extra={"x-webhook-attempt": "3"}).status == 200
        assert post_signed(d, b).status == 200
        r2 = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7701")
        assert r2["id"] == r["id"] and r2["deliveries"] == 3
        assert r2["received_at"] == r["received_at"] and r2["last_seen_at"] > r["received_at"]
        assert r2["body"] == b
        # a FAILED then SUCCESS of one payment are two events
        assert post_signed(d, payment_body("7702", type_="PAYMENT_FAILED_WEBHOOK", status="FAILED")).status == 200
        assert post_signed(d, payment_body("7702")).status == 200
        assert row_by_key(d, "PAYMENT_FAILED_WEBHOOK:7702") is not None
        assert row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7702") is not None
        con = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
        try:
            assert con.execute("PRAGMA user_version").fetchone()[0] >= 1
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            con.close()


def test_forward_state_pending_then_done():
    tmp = tempfile.mkdtemp(prefix="cfhookd-contract-hook-")
    atexit.register(shutil.rmtree, tmp, True)  # no temp dirs left behind
    hook = os.path.join(tmp, "hook")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\nexit 0\n")
    os.chmod(hook, 0o755)
    with Daemon(config={"forward": "hook:" + hook, "forward_backoff": "1"}) as d:
        b = payment_body("7801")
        assert post_signed(d, b).status == 200
        deadline = time.monotonic() + 20 * SLOW
        while True:
            r = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7801")
            assert r["forward_state"] in (b"pending", b"done"), r["forward_state"]
            if r["forward_state"] == b"done":
                break
            assert time.monotonic() < deadline, "never delivered"
            time.sleep(0.05)
        assert r["forward_attempts"] >= 1 and r["forwarded_at"] is not None
        # a duplicate delivery does not forward again
        assert post_signed(d, b).status == 200
        time.sleep(0.3)
        r2 = row_by_key(d, "PAYMENT_SUCCESS_WEBHOOK:7801")
        assert r2["forward_state"] == b"done" and r2["forward_attempts"] == r["forward_attempts"]


# -- the log -----------------------------------------------------------------

def test_log_never_holds_secret_or_body_and_lines_have_priority():
    marker = "BODY-MARKER-7f3a9c"
    with Daemon(secrets=[SECRET, "cfhookd-TEST-ONLY-secret-rotated"]) as d:
        b = payment_body("7901").replace(b'"event_time"', ('"note":"%s","event_time"' % marker).encode())
        assert post_signed(d, b).status == 200
        assert post_signed(d, b).status == 200
        h = d.json_headers(b)
        h["x-webhook-signature"] = "A" * 43 + "="
        assert d.post(b, h).status == 401
        fb = ("type=X&note=%s" % marker).encode()
        assert post_form_hdr(d, fb).status == 200
        assert post_form_raw(d, with_form_sig(fb)).status == 401
        assert post_signed(d, b"{" + marker.encode()).status == 200
        d.stop()
        log = d.log()
        assert marker not in log
        for s in d.secrets:
            assert s not in log
        lines = [l for l in log.splitlines() if l]
        assert lines
        for l in lines:
            assert len(l) > 3 and l[0] == "<" and l[1] in "01234567" and l[2] == ">", l
