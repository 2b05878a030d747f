"""Configuration and secrets at start-up: --check, FILE:LINE errors, the
credentials directory, a world-readable secret file, --version/--help."""

import atexit
import os
import shutil
import subprocess
import tempfile

from harness import Daemon, SLOW, binary, payment_body


def run(args, env=None):
    p = subprocess.run([binary()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=20 * SLOW)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def conf(text):
    d = tempfile.mkdtemp(prefix="cfhookd-conf-")
    atexit.register(shutil.rmtree, d, True)  # no temp dirs left behind
    path = os.path.join(d, "c.conf")
    with open(path, "w") as f:
        f.write(text)
    with open(os.path.join(d, "secret"), "w") as f:
        f.write("s3cr3t-value-for-tests\n")
    os.chmod(os.path.join(d, "secret"), 0o600)
    return path


def test_version_and_help():
    rc, out, _ = run(["--version"])
    assert rc == 0 and out.startswith("cfhookd ")
    rc, out, _ = run(["--help"])
    assert rc == 0 and "--check" in out
    rc, _, err = run(["--bogus"])
    assert rc == 2 and "bogus" in err


def test_check_accepts_a_good_config():
    path = conf("# comment\nlisten = 127.0.0.1:18999\nsecret_file = secret\n"
                "database = events.db\nforward = none\n")
    rc, out, err = run(["-c", path, "--check"])
    assert rc == 0, err
    assert "ok" in out and "s3cr3t" not in out + err


def test_errors_are_file_line_and_all_reported():
    path = conf("listen = 127.0.0.1:18999\nsecret_file = secret\nbogus_key = 1\n"
                "max_body = lots\ndurability = sometimes\n")
    rc, out, err = run(["-c", path, "--check"])
    assert rc == 1
    assert "%s:3:" % path in err and "bogus_key" in err
    assert "%s:4:" % path in err and "max_body" in err
    assert "%s:5:" % path in err and "durability" in err
    # the daemon refuses to start on the same file, with the same messages
    rc, out, err = run(["-c", path])
    assert rc == 1 and "%s:3:" % path in err


def test_missing_secret_and_credentials_directory():
    path = conf("listen = 127.0.0.1:18999\ndatabase = events.db\n")
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    rc, _, err = run(["-c", path, "--check"], env=env)
    assert rc == 1 and "secret" in err
    cred = tempfile.mkdtemp(prefix="cfhookd-cred-")
    atexit.register(shutil.rmtree, cred, True)  # no temp dirs left behind
    with open(os.path.join(cred, "cashfree-secret"), "w") as f:
        f.write("cred-secret-1\ncred-secret-2\n")
    os.chmod(os.path.join(cred, "cashfree-secret"), 0o600)
    env["CREDENTIALS_DIRECTORY"] = cred
    rc, out, err = run(["-c", path, "--check"], env=env)
    assert rc == 0, err
    assert "2 secrets" in out and "cred-secret" not in out + err


def test_world_readable_secret_warns_and_credentials_work_live():
    with Daemon(start=False) as d:
        d.write_secrets(d.secrets, mode=0o644)
        d.start()
        d.wait_log(r"<4>.*secret.*(readable|chmod)")
        assert d.post_json(payment_body("9801")).status == 200
