"""The shipped systemd units, sample config and nginx snippet: checked by the
real tools (systemd-analyze verify and security), installed by `make install`,
and consistent with each other. Needs no systemd running as PID 1."""

import os
import re
import shutil
import subprocess
import tempfile

from harness import BUILD, SANITIZED, TOP, binary

UNITS = os.path.join(TOP, "systemd")
SERVICE = os.path.join(UNITS, "cfhookd.service")
SOCKET = os.path.join(UNITS, "cfhookd.socket")
SAMPLE = os.path.join(TOP, "conf", "cfhookd.conf")
NGINX = os.path.join(TOP, "conf", "nginx-cfhookd.conf")
ALLOW = os.path.join(TOP, "conf", "nginx-cashfree-allow.conf")
MAX_EXPOSURE = 1.5
# Every key of DESIGN "Configuration" (and config.h).
CONFIG_KEYS = ["listen", "listen_mode", "webhook_path", "secret_file", "database",
               "tolerance", "max_body", "max_connections", "idle_timeout",
               "request_timeout", "forward", "forward_timeout", "forward_concurrency",
               "forward_max_attempts", "forward_backoff", "durability", "log_level"]


def analyze():
    path = shutil.which("systemd-analyze")
    # scripts/install-deps installs the `systemd` package: a missing tool is
    # a broken test machine, never a reason to pass.
    assert path is not None, "systemd-analyze not found (scripts/install-deps installs systemd)"
    return path


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120, **kw)


def unit_settings(path):
    """{(section, key): [values]} of a unit file (no continuation lines used)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def config_values(path):
    """key -> value of the uncommented lines of a cfhookd config file."""
    out = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^\s*([a-z_]+)\s*=\s*(.*?)\s*$", line)
            if m:
                out[m.group(1)] = m.group(2)
    return out


def installed_tree():
    """`make install` into a fresh root laid out like Debian 12 (merged /usr),
    with the host's own systemd units, /bin/sh and nothing else added.
    Returns the root; the caller removes it."""
    root = tempfile.mkdtemp(prefix="cfhookd-root-")
    os.makedirs(os.path.join(root, "usr", "lib", "systemd"))
    os.makedirs(os.path.join(root, "usr", "bin"))
    os.symlink("usr/lib", os.path.join(root, "lib"))
    os.symlink("usr/bin", os.path.join(root, "bin"))
    # The targets the units order against (sockets.target, sysinit.target,
    # multi-user.target, ...) exactly as this host's systemd ships them.
    shutil.copytree("/usr/lib/systemd/system",
                    os.path.join(root, "usr", "lib", "systemd", "system"), symlinks=True)
    # ExecReload= runs /bin/sh, present on every Debian system (essential).
    shutil.copy2(os.path.realpath("/bin/sh"), os.path.join(root, "usr", "bin", "sh"))
    cmd = ["make", "-s", "-C", TOP, "install", "DESTDIR=" + root, "PREFIX=/usr/local",
           "BUILD=" + BUILD]
    if SANITIZED:
        cmd.append("FLAVOUR=asan")
    p = run(cmd)
    assert p.returncode == 0, "make install failed:\n%s%s" % (
        p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
    return root


def verify(root):
    p = run([analyze(), "verify", "--root=" + root, "cfhookd.socket", "cfhookd.service"])
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_verify_installed_units():
    root = installed_tree()
    try:
        for rel in ("usr/local/bin/cfhookd", "lib/systemd/system/cfhookd.service",
                    "lib/systemd/system/cfhookd.socket"):
            assert os.path.exists(os.path.join(root, rel)), "make install did not install /" + rel
        # the binary systemd would start is the one this suite tests
        with open(os.path.join(root, "usr/local/bin/cfhookd"), "rb") as a, \
                open(binary(), "rb") as b:
            assert a.read() == b.read(), "installed cfhookd differs from " + binary()
        for name in ("cfhookd.service", "cfhookd.socket"):
            with open(os.path.join(root, "lib/systemd/system", name)) as a, \
                    open(os.path.join(UNITS, name)) as b:
                assert a.read() == b.read(), name + " was changed by make install"
        rc, out, err = verify(root)
        assert err == "", "systemd-analyze verify printed on stderr:\n" + err
        assert rc == 0, "systemd-analyze verify exit %d:\n%s" % (rc, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_verify_can_fail():
    """The check above is not vacuous: a missing binary or a bad key is reported."""
    root = installed_tree()
    try:
        exe = os.path.join(root, "usr/local/bin/cfhookd")
        os.rename(exe, exe + ".gone")
        rc, _, err = verify(root)
        assert "cfhookd" in err and rc != 0, "missing ExecStart binary not reported: %r" % err
        os.rename(exe + ".gone", exe)
        unit = os.path.join(root, "lib/systemd/system/cfhookd.service")
        with open(unit, "a") as f:
            f.write("ProtectSytem=strict\n")
        _, _, err = verify(root)
        assert "ProtectSytem" in err, "unknown key not reported: %r" % err
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_security_exposure():
    p = run([analyze(), "security", "--offline=yes", "--no-pager", SERVICE])
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    assert err == "", "systemd-analyze security printed on stderr:\n" + err
    assert p.returncode == 0, "exit %d:\n%s" % (p.returncode, out)
    m = re.search(r"Overall exposure level for cfhookd\.service: (\d+\.\d+)", out)
    assert m, "no exposure line in:\n" + out[-2000:]
    score = float(m.group(1))
    print("exposure %.1f" % score)
    assert score <= MAX_EXPOSURE, "exposure %.1f > %.1f:\n%s" % (score, MAX_EXPOSURE, out)


def test_service_settings():
    s = unit_settings(SERVICE)
    svc = lambda k: s.get(("Service", k), [])
    assert svc("Type") == ["notify"]
    assert svc("ExecStart") == ["/usr/local/bin/cfhookd -c /etc/cfhookd/cfhookd.conf"]
    assert len(svc("ExecReload")) == 1 and "-HUP" in svc("ExecReload")[0] \
        and "$MAINPID" in svc("ExecReload")[0]
    assert svc("Restart") == ["on-failure"]
    assert svc("WatchdogSec") in (["30"], ["30s"])
    assert svc("TimeoutStopSec") in (["15"], ["15s"])
    assert svc("LoadCredential") == ["cashfree-secret:/etc/cfhookd/cashfree-secret"]
    assert svc("StateDirectory") == ["cfhookd"]
    assert svc("DynamicUser") == ["yes"] or svc("User"), "runs as root"
    assert svc("ProtectSystem") == ["strict"]
    assert svc("NoNewPrivileges") == ["yes"]
    assert svc("CapabilityBoundingSet") == [""]
    # hooks are fork+execve'd under this filter: both must stay allowed
    assert "@system-service" in svc("SystemCallFilter")
    assert not any(x.startswith("~") and ("@process" in x or "execve" in x)
                   for x in svc("SystemCallFilter"))
    assert s.get(("Unit", "Requires"), []) == ["cfhookd.socket"]
    assert "cfhookd.socket" in " ".join(s.get(("Unit", "After"), []))


def test_socket_matches_config_and_nginx():
    sock = unit_settings(SOCKET)
    listen = sock.get(("Socket", "ListenStream"), [])
    assert listen == ["/run/cfhookd/http.sock"], listen
    assert sock.get(("Socket", "SocketMode")) == ["0660"]
    assert sock.get(("Socket", "SocketGroup")) == ["www-data"]
    conf = config_values(SAMPLE)
    assert conf.get("listen") == "unix:" + listen[0], conf.get("listen")
    # the database lives in the unit's StateDirectory=
    state = unit_settings(SERVICE)[("Service", "StateDirectory")][0]
    assert conf.get("database", "").startswith("/var/lib/%s/" % state), conf.get("database")
    assert "secret_file" not in conf, "the sample must use the unit's credential"
    with open(NGINX) as f:
        nginx = f.read()
    assert "proxy_pass http://unix:%s:;" % listen[0] in nginx
    # nginx's location and body cap agree with cfhookd's defaults
    assert "location = /webhooks/cashfree {" in nginx
    assert re.search(r"^#webhook_path = /webhooks/cashfree$", open(SAMPLE).read(), re.M)
    assert re.search(r"^\s*client_max_body_size 256k;", nginx, re.M)
    assert re.search(r"^#max_body = 262144$", open(SAMPLE).read(), re.M)  # = 256k


def test_sample_config_lists_every_key():
    with open(SAMPLE) as f:
        text = f.read()
    for k in CONFIG_KEYS:
        assert re.search(r"^#?%s = \S" % k, text, re.M), "conf/cfhookd.conf does not list " + k
    known = set(CONFIG_KEYS)
    for m in re.finditer(r"^#?([a-z_]+) = ", text, re.M):
        assert m.group(1) in known, "unknown key in the sample: " + m.group(1)


def test_sample_config_checks():
    """`cfhookd --check` accepts the sample (secret from $CREDENTIALS_DIRECTORY
    as LoadCredential= provides it; only the hook's path and the database's
    directory, the unit's StateDirectory=, changed to ones that exist here),
    and also with every commented default uncommented."""
    tmp = tempfile.mkdtemp(prefix="cfhookd-conf-")
    try:
        creds = os.path.join(tmp, "creds")
        os.mkdir(creds)
        with open(os.path.join(creds, "cashfree-secret"), "w") as f:
            f.write("cfhookd-TEST-ONLY-secret-0001\n")
        os.chmod(os.path.join(creds, "cashfree-secret"), 0o400)   # as systemd makes it
        hook = os.path.join(tmp, "example-hook")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\n")
        os.chmod(hook, 0o755)
        shipped_hook = "hook:" + config_values(SAMPLE)["forward"].split(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
        env["CREDENTIALS_DIRECTORY"] = creds
        # as shipped, but for the hook path and the database's directory
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        lines = [l.replace(shipped_hook, "hook:" + hook) if l.startswith("forward =") else
                 l.replace("/var/lib/cfhookd/", state + "/") if l.startswith("database =") else l
                 for l in open(SAMPLE)]
        conf = os.path.join(tmp, "cfhookd.conf")
        with open(conf, "w") as f:
            f.writelines(lines)
        p = run([binary(), "-c", conf, "--check"], env=env)
        out = (p.stdout + p.stderr).decode(errors="replace")
        assert p.returncode == 0, "--check on the sample failed:\n" + out
        assert "cfhookd-TEST-ONLY" not in out
        assert "warning" not in out.lower() and "<4>" not in out, out
        # uncomment the first commented line of each key not set (secret_file
        # stays the credential; forward alternatives stay alternatives)
        seen, full_lines = set(config_values(conf)), []
        for line in lines:
            m = re.match(r"^#([a-z_]+) = ", line)
            if m and m.group(1) not in seen and m.group(1) != "secret_file":
                seen.add(m.group(1))
                line = line[1:]
            full_lines.append(line)
        full = os.path.join(tmp, "full.conf")
        with open(full, "w") as f:
            f.writelines(full_lines)
        assert set(config_values(full)) == set(CONFIG_KEYS) - {"secret_file"}
        p = run([binary(), "-c", full, "--check"], env=env)
        assert p.returncode == 0, "--check with the defaults spelled out failed:\n" + \
            (p.stdout + p.stderr).decode(errors="replace")
        # and a typo is caught (the check can fail)
        with open(full, "a") as f:
            f.write("forward_backof = 2\n")
        p = run([binary(), "-c", full, "--check"], env=env)
        assert p.returncode == 1, "a bad key passed --check"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_install_ships_conf_and_keeps_it():
    root = installed_tree()
    try:
        conf = os.path.join(root, "etc/cfhookd/cfhookd.conf")
        with open(conf) as a, open(SAMPLE) as b:
            assert a.read() == b.read()
        for rel in ("usr/local/share/cfhookd/nginx-cfhookd.conf",
                    "usr/local/share/cfhookd/nginx-cashfree-allow.conf"):
            assert os.path.exists(os.path.join(root, rel)), "make install did not install /" + rel
        # the sample's forward = hook:... must be runnable once installed
        hook = config_values(SAMPLE)["forward"].split(":", 1)[1]
        path = os.path.join(root, hook.lstrip("/"))
        assert os.path.isfile(path), "make install did not install " + hook
        assert os.access(path, os.X_OK), hook + " is installed without the execute bit"
        # an operator's edited config survives a re-install
        with open(conf, "a") as f:
            f.write("log_level = debug\n")
        p = run(["make", "-s", "-C", TOP, "install", "DESTDIR=" + root, "PREFIX=/usr/local",
                 "BUILD=" + BUILD] + (["FLAVOUR=asan"] if SANITIZED else []))
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        with open(conf) as f:
            assert f.read().endswith("log_level = debug\n"), "make install overwrote the config"
    finally:
        shutil.rmtree(root, ignore_errors=True)
