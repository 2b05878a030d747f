"""The shipped systemd units, sample config and nginx snippet: checked by the
real tools (systemd-analyze verify and security), installed by `make install`
(for PREFIX=/usr/local, /usr and another prefix) and removed by `make
uninstall`, and consistent with each other. Needs no systemd as PID 1."""

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
CONFIG_C = os.path.join(TOP, "src", "config.c")
# Keys DESIGN "Configuration" names that work in flight adds to config.c's
# table: documented (sample, cfhookd.conf(5)) ahead of the code. Keys in
# the table are checked in full; these only may appear without being there.
SOON_KEYS = set()


def config_table_keys():
    """The keys of src/config.c's table, in order: the code's own list, so
    the sample and the manual are checked against whatever it holds."""
    with open(CONFIG_C) as f:
        text = f.read()
    start = text.index("static const struct key keys[] = {")
    table = text[start:text.index("\n};", start)]
    keys = re.findall(r'\{\s*"([a-z_]+)",\s*K_[A-Z_]+', table)
    assert len(keys) >= 17, "cannot read the key table of src/config.c: %r" % keys
    return keys


CONFIG_KEYS = config_table_keys()


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


def make_install(root, *args, target="install"):
    cmd = ["make", "-s", "-C", TOP, target, "DESTDIR=" + root, "BUILD=" + BUILD] + list(args)
    if SANITIZED:
        cmd.append("FLAVOUR=asan")
    p = run(cmd)
    assert p.returncode == 0, "make %s failed:\n%s%s" % (
        target, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
    return p.stdout.decode(errors="replace")


def debian_root():
    """A fresh root laid out like Debian 12 (merged /usr) with the host's own
    systemd units and /bin/sh and nothing else. The caller removes it."""
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
    return root


def installed_tree(prefix="/usr/local"):
    """`make install PREFIX=prefix` into a debian_root(). Returns the root;
    the caller removes it."""
    root = debian_root()
    make_install(root, "PREFIX=" + prefix)
    return root


def tree_files(root):
    """{path relative to root: mode} of every file make install could have
    added (the host's units and /bin/sh from debian_root() left out; /lib
    is /usr/lib there)."""
    out = {}
    for d, dirs, files in os.walk(root):
        rel_d = os.path.relpath(d, root)
        host = rel_d == "usr/lib/systemd/system"
        if host:
            dirs[:] = []
        for name in files:
            rel = os.path.normpath(os.path.join(rel_d, name))
            if rel != "usr/bin/sh" and not (host and not name.startswith("cfhookd")):
                out[rel] = os.lstat(os.path.join(d, name)).st_mode & 0o7777
    return out


def expected_files(prefix, unitdir):
    """What `make install PREFIX=prefix` installs: {relative path: mode}."""
    p = prefix.strip("/")
    doc = p + "/share/doc/cfhookd"
    files = {
        p + "/sbin/cfhookd": 0o755, p + "/bin/cfhookctl": 0o755,
        p + "/share/cfhookd/cfhook-send": 0o755,
        p + "/share/cfhookd/cfhookd.conf.example": 0o644,
        "etc/cfhookd/cfhookd.conf": 0o644,
        doc + "/examples/example-hook": 0o755, doc + "/examples/example-consumer": 0o755,
        p + "/share/man/man5/cfhookd.conf.5": 0o644,
        p + "/share/man/man8/cfhookd.8": 0o644, p + "/share/man/man8/cfhookctl.8": 0o644,
    }
    units = re.sub(r"^lib/", "usr/lib/", unitdir.strip("/"))     # merged /usr
    files[units + "/cfhookd.service"] = files[units + "/cfhookd.socket"] = 0o644
    for name in ("README.md", "audit.sql", "nginx-cfhookd.conf", "nginx-cashfree-allow.conf",
                 "prometheus-cfhookd.rules.yml", "prometheus-cfhookd.tests.yml",
                 "grafana-cfhookd.json"):
        files[doc + "/" + name] = 0o644
    return files


def same_files(got, want):
    assert got == want, "unexpected %r, missing %r" % (
        sorted(set(got.items()) - set(want.items())),
        sorted(set(want.items()) - set(got.items())))


def elf_sections(path):
    p = run(["readelf", "-S", "-W", path])
    assert p.returncode == 0, p.stderr
    return set(re.findall(r"\]\s+(\.\S+)", p.stdout.decode()))


def build_id(path):
    p = run(["readelf", "-n", path])
    m = re.search(r"Build ID: ([0-9a-f]+)", p.stdout.decode())
    assert m, "no build id in " + path
    return m.group(1)


def verify(root, man=None):
    """systemd-analyze verify of the units installed in root. It looks for
    the Documentation=man: pages with the host's man(1), not under --root:
    MANPATH points it at the tree's own."""
    env = dict(os.environ, MANPATH=man or os.path.join(root, "usr/local/share/man"))
    p = run([analyze(), "verify", "--root=" + root, "cfhookd.socket", "cfhookd.service"],
            env=env)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_verify_installed_units():
    root = installed_tree()
    try:
        same_files(tree_files(root), expected_files("/usr/local", "/usr/local/lib/systemd/system"))
        # the binaries systemd would start are the ones this suite tests,
        # stripped; the build keeps its symbols and debug info
        for rel, name in (("usr/local/sbin/cfhookd", "cfhookd"),
                          ("usr/local/bin/cfhookctl", "cfhookctl")):
            inst = os.path.join(root, rel)
            assert build_id(inst) == build_id(binary(name)), rel + " is another build"
            assert ".symtab" not in elf_sections(inst), rel + " is not stripped"
            assert {".symtab", ".debug_info"} <= elf_sections(binary(name)), \
                binary(name) + " lost its debug info"
        for name in ("cfhookd.service", "cfhookd.socket"):
            with open(os.path.join(root, "usr/local/lib/systemd/system", name)) as a, \
                    open(os.path.join(UNITS, name)) as b:
                assert a.read() == b.read(), name + " was changed by make install"
        rc, out, err = verify(root)
        assert err == "", "systemd-analyze verify printed on stderr:\n" + err
        assert rc == 0, "systemd-analyze verify exit %d:\n%s" % (rc, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_verify_can_fail():
    """The check above is not vacuous: a missing binary, a missing manual
    page or a bad key is reported."""
    root = installed_tree()
    try:
        exe = os.path.join(root, "usr/local/sbin/cfhookd")
        os.rename(exe, exe + ".gone")
        rc, _, err = verify(root)
        assert "cfhookd" in err and rc != 0, "missing ExecStart binary not reported: %r" % err
        os.rename(exe + ".gone", exe)
        man = os.path.join(root, "usr/local/share/man/man5/cfhookd.conf.5")
        os.rename(man, man + ".gone")
        rc, _, err = verify(root)
        assert "cfhookd.conf(5)" in err and rc != 0, "missing man page not reported: %r" % err
        os.rename(man + ".gone", man)
        unit = os.path.join(root, "usr/local/lib/systemd/system/cfhookd.service")
        with open(unit, "a") as f:
            f.write("ProtectSytem=strict\n")
        _, _, err = verify(root)
        assert "ProtectSytem" in err, "unknown key not reported: %r" % err
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_prefix_install(root, prefix, unitdir):
    """After `make install PREFIX=prefix`: exactly the expected files, the
    units and the sample naming this install's paths, and systemd-analyze
    accepting the units where systemd will look for them."""
    same_files(tree_files(root), expected_files(prefix, unitdir))
    units = os.path.join(root, unitdir.strip("/"))
    svc = unit_settings(os.path.join(units, "cfhookd.service"))
    assert svc[("Service", "ExecStart")] == [prefix + "/sbin/cfhookd -c /etc/cfhookd/cfhookd.conf"]
    for name in ("cfhookd.service", "cfhookd.socket"):
        with open(os.path.join(units, name)) as f:
            assert "/usr/local" not in f.read(), name + " still names /usr/local"
    with open(os.path.join(root, "etc/cfhookd/cfhookd.conf")) as f:
        text = f.read()
    hook = prefix + "/share/doc/cfhookd/examples/example-hook"
    assert hook in text, "the sample does not name the installed example hook " + hook
    assert os.access(os.path.join(root, hook.lstrip("/")), os.X_OK)
    # the operator's own hook keeps its place, outside the package's paths
    assert "\n#forward = hook:/usr/local/lib/cfhookd/fulfil-hook\n" in text
    with open(os.path.join(root, prefix.strip("/"), "share/man/man8/cfhookd.8")) as f:
        page = f.read()
    assert unitdir + "/cfhookd.service" in page and prefix + "/share/doc/cfhookd/" in page
    rc, out, err = verify(root, man=os.path.join(root, prefix.strip("/"), "share/man"))
    assert err == "" and rc == 0, "systemd-analyze verify exit %d:\n%s%s" % (rc, out, err)


def test_install_prefix_usr_is_the_debian_layout():
    """PREFIX=/usr, as the Debian package installs: units in
    /lib/systemd/system, every path rewritten, nothing under /usr/local."""
    root = installed_tree("/usr")
    try:
        check_prefix_install(root, "/usr", "/lib/systemd/system")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_install_other_prefix_puts_units_in_etc():
    """systemd searches no other prefix: the units go to /etc/systemd/system,
    naming the binary under that prefix."""
    root = installed_tree("/opt/cfhookd")
    try:
        check_prefix_install(root, "/opt/cfhookd", "/etc/systemd/system")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_uninstall_removes_exactly_what_install_added():
    root = installed_tree()
    try:
        with open(os.path.join(root, "etc/cfhookd/cashfree-secret"), "w") as f:
            f.write("cfhookd-TEST-ONLY-secret-0001\n")
        notes = os.path.join(root, "usr/local/share/doc/cfhookd/my-notes.txt")
        with open(notes, "w") as f:
            f.write("the operator's own file\n")
        out = make_install(root, "PREFIX=/usr/local", target="uninstall")
        assert "kept /etc/cfhookd" in out, out
        kept = {"etc/cfhookd/cfhookd.conf", "etc/cfhookd/cashfree-secret"}
        assert set(tree_files(root)) == kept | {"usr/local/share/doc/cfhookd/my-notes.txt"}
        os.unlink(notes)
        make_install(root, "PREFIX=/usr/local", target="uninstall")    # again: no error
        assert set(tree_files(root)) == kept
        # cfhookd's own directories go; shared ones (bin, man8, ...) stay
        for d in ("usr/local/share/cfhookd", "usr/local/share/doc/cfhookd"):
            assert not os.path.exists(os.path.join(root, d)), d + " left behind"
        assert os.path.isdir(os.path.join(root, "usr/local/bin"))
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
    assert svc("ExecStart") == ["/usr/local/sbin/cfhookd -c /etc/cfhookd/cfhookd.conf"]
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
    # intake raises itself 10 levels by this limit, not by a capability
    assert svc("LimitNICE") == ["-10"] and svc("RestrictRealtime") == ["yes"]
    # hooks are fork+execve'd under this filter: both must stay allowed
    assert "@system-service" in svc("SystemCallFilter")
    assert not any(x.startswith("~") and ("@process" in x or "execve" in x)
                   for x in svc("SystemCallFilter"))
    assert s.get(("Unit", "Requires"), []) == ["cfhookd.socket"]
    assert "cfhookd.socket" in " ".join(s.get(("Unit", "After"), []))
    # without the secret, LoadCredential= fails: both units are skipped
    # instead, so a fresh install never loops on restarts
    secret = svc("LoadCredential")[0].split(":", 1)[1]
    assert s.get(("Unit", "ConditionPathExists")) == [secret]
    assert unit_settings(SOCKET).get(("Unit", "ConditionPathExists")) == [secret]


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
    known = set(CONFIG_KEYS) | SOON_KEYS
    for m in re.finditer(r"^#?([a-z_]+) = ", text, re.M):
        assert m.group(1) in known, "unknown key in the sample: " + m.group(1)


def test_sample_config_checks():
    """`cfhookd --check` accepts the sample (secret from $CREDENTIALS_DIRECTORY
    as LoadCredential= provides it; only the database's directory, the
    unit's StateDirectory=, changed to one that exists here), also with every
    commented default uncommented and with a hook configured."""
    tmp = tempfile.mkdtemp(prefix="cfhookd-conf-")
    try:
        creds = os.path.join(tmp, "creds")
        os.mkdir(creds)
        with open(os.path.join(creds, "cashfree-secret"), "w") as f:
            f.write("cfhookd-TEST-ONLY-secret-0001\n")
        os.chmod(os.path.join(creds, "cashfree-secret"), 0o400)   # as systemd makes it
        env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
        env["CREDENTIALS_DIRECTORY"] = creds
        # forwarding is off as shipped: the example hook would mark real
        # payments done without fulfilling them
        assert "forward" not in config_values(SAMPLE), "the sample must not set forward"
        # as shipped, but for the database's directory
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        lines = [l.replace("/var/lib/cfhookd/", state + "/") if l.startswith("database =")
                 else l for l in open(SAMPLE)]
        conf = os.path.join(tmp, "cfhookd.conf")
        with open(conf, "w") as f:
            f.writelines(lines)
        p = run([binary(), "-c", conf, "--check"], env=env)
        out = (p.stdout + p.stderr).decode(errors="replace")
        assert p.returncode == 0, "--check on the sample failed:\n" + out
        assert "forward none" in out, out
        assert "cfhookd-TEST-ONLY" not in out
        assert "warning" not in out.lower() and "<4>" not in out, out
        # uncomment the first commented line of each key of the table (its
        # default; secret_file stays the credential)
        seen, full_lines = set(), []
        for line in lines:
            m = re.match(r"^#([a-z_]+) = ", line)
            if m and m.group(1) not in seen and m.group(1) in CONFIG_KEYS and \
                    m.group(1) != "secret_file":
                seen.add(m.group(1))
                line = line[1:]
            full_lines.append(line)
        full = os.path.join(tmp, "full.conf")
        with open(full, "w") as f:
            f.writelines(full_lines)
        assert set(config_values(full)) == set(CONFIG_KEYS) - {"secret_file"}
        assert config_values(full)["forward"] == "none"
        p = run([binary(), "-c", full, "--check"], env=env)
        assert p.returncode == 0, "--check with the defaults spelled out failed:\n" + \
            (p.stdout + p.stderr).decode(errors="replace")
        # the hook example, pointed at a hook that exists here
        hook = os.path.join(tmp, "fulfil-hook")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\n")
        os.chmod(hook, 0o755)
        example = "#forward = hook:/usr/local/lib/cfhookd/fulfil-hook\n"
        assert example in lines
        hooked = os.path.join(tmp, "hooked.conf")
        with open(hooked, "w") as f:
            f.writelines("forward = hook:%s\n" % hook if l == example else l for l in lines)
        p = run([binary(), "-c", hooked, "--check"], env=env)
        assert p.returncode == 0 and "forward hook:" + hook in p.stdout.decode(), \
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
        # an operator's edited config survives a re-install
        with open(conf, "a") as f:
            f.write("log_level = debug\n")
        out = make_install(root, "PREFIX=/usr/local")
        assert "keeping existing /etc/cfhookd/cfhookd.conf" in out, out
        with open(conf) as f:
            assert f.read().endswith("log_level = debug\n"), "make install overwrote the config"
    finally:
        shutil.rmtree(root, ignore_errors=True)
