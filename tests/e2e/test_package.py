"""The Debian package: `make deb` builds cfhookd_VERSION_ARCH.deb once (unit
tests skipped: `make test` runs them), and its contents, control data,
maintainer scripts and units are checked with dpkg-deb, lintian and
systemd-analyze. Nothing is installed on this machine: the package is only
unpacked into temp dirs."""

import atexit
import gzip
import os
import re
import shutil
import subprocess
import tempfile

from harness import TOP, Skip
from test_units import debian_root, elf_sections, unit_settings

VERSION = re.search(r'#define CFHOOK_VERSION\s+"([^"]+)"',
                    open(os.path.join(TOP, "include", "version.h")).read()).group(1)
# Every path in the package, with its mode: the package's whole contents.
# Directories are root:root 0755; so is everything else root-owned.
CONTENTS = {
    "etc/cfhookd/cfhookd.conf": 0o644,
    "lib/systemd/system/cfhookd.service": 0o644,
    "lib/systemd/system/cfhookd.socket": 0o644,
    "usr/bin/cfhookctl": 0o755,
    "usr/sbin/cfhookd": 0o755,
    "usr/share/cfhookd/cfhook-send": 0o755,
    "usr/share/cfhookd/cfhookd.conf.example": 0o644,
    "usr/share/doc/cfhookd/README.Debian": 0o644,
    "usr/share/doc/cfhookd/README.md.gz": 0o644,
    "usr/share/doc/cfhookd/audit.sql": 0o644,
    "usr/share/doc/cfhookd/changelog.gz": 0o644,
    "usr/share/doc/cfhookd/copyright": 0o644,
    "usr/share/doc/cfhookd/examples/example-consumer": 0o755,
    "usr/share/doc/cfhookd/examples/example-hook": 0o755,
    "usr/share/doc/cfhookd/grafana-cfhookd.json": 0o644,
    "usr/share/doc/cfhookd/nginx-cashfree-allow.conf": 0o644,
    "usr/share/doc/cfhookd/nginx-cfhookd.conf": 0o644,
    "usr/share/doc/cfhookd/prometheus-cfhookd.rules.yml": 0o644,
    "usr/share/doc/cfhookd/prometheus-cfhookd.tests.yml": 0o644,
    "usr/share/lintian/overrides/cfhookd": 0o644,
    "usr/share/man/man5/cfhookd.conf.5.gz": 0o644,
    "usr/share/man/man8/cfhookctl.8.gz": 0o644,
    "usr/share/man/man8/cfhookd.8.gz": 0o644,
}
_built = {}


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kw)


def arch():
    return run(["dpkg", "--print-architecture"]).stdout.decode().strip()


def package():
    """Builds the package once per test process; returns (dir, .deb path)."""
    if "deb" in _built:
        return _built["dir"], _built["deb"]
    for tool in ("dpkg-buildpackage", "dpkg-deb", "dh"):
        if shutil.which(tool) is None:
            raise Skip("%s is not installed (scripts/install-deps installs dpkg-dev "
                       "and debhelper)" % tool)
    out = tempfile.mkdtemp(prefix="cfhookd-deb-")
    atexit.register(shutil.rmtree, out, True)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")
    p = run(["make", "-s", "-C", TOP, "deb", "DEBDIR=" + out], timeout=600, env=env)
    log = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, "make deb failed:\n" + log[-6000:]
    deb = os.path.join(out, "cfhookd_%s_%s.deb" % (VERSION, arch()))
    assert os.path.isfile(deb), "no %s; make deb said:\n%s" % (deb, log[-3000:])
    assert "make deb: %s" % deb in log, log[-2000:]
    _built.update(dir=out, deb=deb)
    return out, deb


def unpacked():
    """The package's files under a fresh dir (dpkg-deb -x); cached."""
    if "root" not in _built:
        _, deb = package()
        root = tempfile.mkdtemp(prefix="cfhookd-debx-")
        atexit.register(shutil.rmtree, root, True)
        p = run(["dpkg-deb", "-x", deb, root])
        assert p.returncode == 0, p.stderr
        _built["root"] = root
    return _built["root"]


def control_file(deb, name):
    p = run(["dpkg-deb", "-I", deb, name])
    assert p.returncode == 0, "%s: %s" % (name, p.stderr)
    return p.stdout.decode()


def test_contents_and_modes():
    _, deb = package()
    p = run(["dpkg-deb", "-c", deb])
    assert p.returncode == 0, p.stderr
    files, dirs = {}, set()
    for line in p.stdout.decode().splitlines():
        perm, owner, _size, _date, _time, path = line.split(None, 5)
        path = path.split(" -> ")[0][2:]            # "./usr/..." -> "usr/..."
        assert owner == "root/root", line
        if perm.startswith("d"):
            assert perm == "drwxr-xr-x", line
            dirs.add(path.rstrip("/"))
            continue
        assert perm[0] == "-", "not a regular file: " + line
        mode = sum(0o400 >> i for i, c in enumerate(perm[1:]) if c != "-")
        assert "s" not in perm and "t" not in perm, line
        files[path] = mode
    assert files == CONTENTS, "unexpected %r, missing %r" % (
        sorted(set(files.items()) - set(CONTENTS.items())),
        sorted(set(CONTENTS.items()) - set(files.items())))
    # nothing for /usr/local, the database or the secret: those are the
    # administrator's
    assert not any(d.startswith(("usr/local", "var")) for d in dirs), sorted(dirs)


def test_control_and_conffiles():
    _, deb = package()
    info = control_file(deb, "control")
    fields = dict(re.findall(r"^(\S+): (.*)$", info, re.M))
    assert fields["Package"] == "cfhookd"
    assert fields["Version"] == VERSION, "the package is %s, include/version.h %s" % (
        fields["Version"], VERSION)
    assert fields["Architecture"] == arch()
    for lib in ("libmicrohttpd", "libssl", "libjansson", "libsqlite3", "libpq5", "libsystemd",
                "libc6"):
        assert lib in fields["Depends"], fields["Depends"]
    assert control_file(deb, "conffiles").split() == ["/etc/cfhookd/cfhookd.conf"]
    # a fresh install enables both units and starts them (skipped by their
    # condition until the secret exists); an upgrade restarts only the
    # service; a removal stops both
    postinst = control_file(deb, "postinst")
    for unit in ("cfhookd.service", "cfhookd.socket"):
        assert "deb-systemd-helper enable '%s'" % unit in postinst, postinst
    assert re.search(r"deb-systemd-invoke start 'cfhookd.service' 'cfhookd.socket'", postinst)
    assert "deb-systemd-invoke try-restart cfhookd.service" in postinst
    assert "restart 'cfhookd.socket'" not in postinst and "_dh_action" not in postinst
    prerm = control_file(deb, "prerm")
    assert re.search(r'\[ "\$1" = remove \].*\n\s*deb-systemd-invoke stop '
                     r"'cfhookd.service' 'cfhookd.socket'", prerm), prerm
    postrm = control_file(deb, "postrm")
    assert "rm -f /etc/cfhookd/cashfree-secret" in postrm
    assert "/var/lib" not in re.sub(r"(?m)^#.*$", "", postrm), "purge must keep the database"
    # ...which is why starting both at install is safe
    for name in ("cfhookd.service", "cfhookd.socket"):
        unit = unit_settings(os.path.join(unpacked(), "lib/systemd/system", name))
        assert unit[("Unit", "ConditionPathExists")] == ["/etc/cfhookd/cashfree-secret"], name


def test_binaries_run_and_config_checks():
    """The packaged binaries run here (a real dynamic link), are stripped,
    and `cfhookd --check` accepts the packaged conffile."""
    root = unpacked()
    daemon = os.path.join(root, "usr/sbin/cfhookd")
    ctl = os.path.join(root, "usr/bin/cfhookctl")
    for exe, name in ((daemon, "cfhookd"), (ctl, "cfhookctl")):
        p = run([exe, "--version"])
        assert p.returncode == 0 and p.stdout.decode() == "%s %s\n" % (name, VERSION), p
        assert ".symtab" not in elf_sections(exe) and ".debug_info" not in elf_sections(exe)
    creds = tempfile.mkdtemp(prefix="cfhookd-creds-")
    try:
        with open(os.path.join(creds, "cashfree-secret"), "w") as f:
            f.write("cfhookd-TEST-ONLY-secret-0001\n")
        os.chmod(os.path.join(creds, "cashfree-secret"), 0o400)
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        env["CREDENTIALS_DIRECTORY"] = creds
        # the conffile as packaged, but for the database's directory (the
        # unit's StateDirectory=, which systemd creates at the first start)
        state = os.path.join(creds, "state")
        os.mkdir(state)
        conf = os.path.join(creds, "cfhookd.conf")
        with open(os.path.join(root, "etc/cfhookd/cfhookd.conf")) as f:
            lines = [l.replace("/var/lib/cfhookd/", state + "/") if l.startswith("database =")
                     else l for l in f]
        with open(conf, "w") as f:
            f.writelines(lines)
        p = run([daemon, "-c", conf, "--check"], env=env)
        assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")
        assert "forward none" in p.stdout.decode()
    finally:
        shutil.rmtree(creds, ignore_errors=True)
    with open(os.path.join(root, "etc/cfhookd/cfhookd.conf")) as f:
        text = f.read()
    assert "/usr/share/doc/cfhookd/examples/example-hook" in text
    assert "/usr/local/share" not in text


def test_no_build_paths():
    """No file of the package names the tree or the directory it was built
    in (debug info went to the -dbgsym package)."""
    out, _ = package()
    root = unpacked()
    needles = [os.path.realpath(TOP).encode(), os.path.realpath(out).encode()]
    for d, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                data = f.read()
            if name.endswith(".gz"):
                data = gzip.decompress(data)
            for n in needles:
                assert n not in data, "%s holds the build path %r" % (
                    os.path.relpath(path, root), n.decode())
    # dpkg's prefix map reaches the compiler: even the debug info in the
    # -dbgsym package (whose dump names the sources, so it is a real dump)
    # does not name the directory the package was built in
    dbg = tempfile.mkdtemp(prefix="cfhookd-dbgsym-")
    try:
        ddeb = os.path.join(out, "cfhookd-dbgsym_%s_%s.deb" % (VERSION, arch()))
        assert run(["dpkg-deb", "-x", ddeb, dbg]).returncode == 0
        dumps = b""
        for d, _dirs, files in os.walk(os.path.join(dbg, "usr/lib/debug")):
            for name in files:
                dumps += run(["readelf", "--debug-dump=info", os.path.join(d, name)]).stdout
        assert b"src/main.c" in dumps
        assert os.path.join(os.path.realpath(out), "cfhookd-" + VERSION).encode() not in dumps
    finally:
        shutil.rmtree(dbg, ignore_errors=True)


def test_units_verify():
    """systemd-analyze verify accepts the packaged units in a root made of
    the unpacked package and this host's own units (systemd 252's --root
    works; it looks for man: pages with the host's man(1), so MANPATH
    points at the package's)."""
    _, deb = package()
    root = debian_root()
    try:
        p = run(["dpkg-deb", "-x", deb, root])
        assert p.returncode == 0, p.stderr
        units = os.path.join(root, "lib/systemd/system")
        for name in ("cfhookd.service", "cfhookd.socket"):
            with open(os.path.join(units, name)) as f:
                assert "/usr/local" not in f.read(), name
        svc = unit_settings(os.path.join(units, "cfhookd.service"))
        assert svc[("Service", "ExecStart")] == ["/usr/sbin/cfhookd -c /etc/cfhookd/cfhookd.conf"]
        env = dict(os.environ, MANPATH=os.path.join(root, "usr/share/man"))
        cmd = ["systemd-analyze", "verify", "--root=" + root, "cfhookd.socket",
               "cfhookd.service"]
        p = run(cmd, env=env)
        err = p.stderr.decode(errors="replace")
        assert p.returncode == 0 and err == "", "verify exit %d:\n%s" % (p.returncode, err)
        # and it would notice a unit naming a binary the package lacks
        os.rename(os.path.join(root, "usr/sbin/cfhookd"), os.path.join(root, "cfhookd.gone"))
        p = run(cmd, env=env)
        assert p.returncode != 0 and b"/usr/sbin/cfhookd" in p.stderr, p.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_manual_pages_render():
    root = unpacked()
    for page in ("man5/cfhookd.conf.5.gz", "man8/cfhookd.8.gz", "man8/cfhookctl.8.gz"):
        with gzip.open(os.path.join(root, "usr/share/man", page)) as f:
            src = f.read()
        p = run(["groff", "-ww", "-z", "-mandoc", "-Tutf8"], input=src,
                env=dict(os.environ, LC_ALL="C.UTF-8"))
        assert p.returncode == 0 and p.stderr == b"", "%s: %s" % (page, p.stderr)
        assert b"/usr/local/sbin" not in src and b"/usr/local/share" not in src, page


def test_lintian_clean():
    """No error and no warning from lintian (pedantic and info tags are
    overridden or fixed, see debian/cfhookd.lintian-overrides)."""
    out, _ = package()
    if shutil.which("lintian") is None:
        raise Skip("lintian is not installed (scripts/install-deps installs it)")
    changes = os.path.join(out, "cfhookd_%s_%s.changes" % (VERSION, arch()))
    p = run(["lintian", "--fail-on", "error,warning", "-I", "--pedantic", changes],
            timeout=300)
    text = p.stdout.decode(errors="replace")
    tags = [l for l in text.splitlines() if re.match(r"^[EWIP]: ", l)]
    assert p.returncode == 0 and tags == [], "lintian:\n" + text + p.stderr.decode()
