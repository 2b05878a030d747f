"""Helpers of make bench (scripts/bench): the C tools, the reference nginx,
/proc readings and the result table. Python standard library only.

Every tool failure raises BenchError with the reason: scripts/bench reports
it in the table and exits non-zero, because a figure that could not be
measured must never look like a measured one."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something needed for a figure failed to run."""


# -- the C tools (tests/bench/*.c, built by make bench-tools) ---------------

def tool(build, name):
    path = os.path.join(build, "bench", name)
    if not os.access(path, os.X_OK):
        raise BenchError("%s missing: run 'make bench-tools'" % path)
    return path


def parse_kv(line, tag):
    """{key: value} of the line "TAG k=v k=v ...", numbers as int/float."""
    out = {}
    for item in line[len(tag):].split():
        k, _, v = item.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def run_tagged(cmd, tag, timeout):
    """Runs cmd; returns the parsed "TAG ..." line of its output."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("%s did not finish within %d s" % (os.path.basename(cmd[0]), timeout))
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace").strip()
    lines = [l for l in out.splitlines() if l.startswith(tag + " ")]
    if p.returncode != 0 or not lines:
        raise BenchError("%s exited %d: %s" % (" ".join(cmd[:1] + cmd[-1:]), p.returncode,
                                               err or out.strip()[-300:]))
    return parse_kv(lines[-1], tag)


def loadgen(build, target, secret_file, threads=2, conns=32, seconds=None,
            requests=None, rate=None, dup=0.0, form=0.0, unix=None, timeout_s=30):
    """One loadgen run; returns its LOADGEN fields (see tests/bench/loadgen.c).
    target: the URL (with unix, only Host and path are taken from it)."""
    cmd = [tool(build, "loadgen"), "-q", "-s", secret_file, "-t", str(threads),
           "-c", str(conns), "-T", str(timeout_s)]
    if requests:
        cmd += ["-n", str(requests)]
    else:
        cmd += ["-d", str(seconds)]
    if rate:
        cmd += ["-r", str(rate)]
    if dup:
        cmd += ["-D", str(dup)]
    if form:
        cmd += ["-f", str(form)]
    if unix:
        cmd += ["-U", unix]
    limit = (seconds or 0) + timeout_s + 60
    return run_tagged(cmd + [target], "LOADGEN", limit)


def sign_cost(build, secret_file, n=200000):
    return run_tagged([tool(build, "loadgen"), "-s", secret_file, "--sign-cost", str(n)],
                      "SIGNCOST", 120)


def spawn_rate(build, hook, parallel, seconds):
    return run_tagged([tool(build, "spawnrate"), "-p", str(parallel), "-d", str(seconds), hook],
                      "SPAWNRATE", seconds + 60)


class Consumer:
    """tests/bench/consumer on a unix socket; stop() returns its counts."""

    def __init__(self, build, path, fast):
        cmd = [tool(build, "consumer")] + (["--fast"] if fast else []) + [path]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError("consumer did not listen on " + path)
            time.sleep(0.01)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("CONSUMER "):
                return parse_kv(line, "CONSUMER")
        return {}


# -- the reference: nginx answering 200 to the same POSTs -------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    """nginx in the foreground, in a temp prefix on a free port, answering
    `return 200` with cfhookd's "new" body on the webhook path: what a
    server that does no work costs this machine with the same generator.
    One worker per CPU (worker_processes auto), no access log, and keep-alive
    without a request limit, as cfhookd has none."""

    BODY = '{"status":"ok","result":"new"}'

    def __init__(self, path):
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(exe, os.X_OK):
            raise BenchError("nginx not found (scripts/install-deps installs nginx-light)")
        self.dir = tempfile.mkdtemp(prefix="cfhookd-bench-nginx-")
        self.port = free_port()
        d = self.dir
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.mkdir(os.path.join(d, sub))
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "worker_processes auto;",
                "pid %s/nginx.pid;" % d,
                "error_log %s/error.log warn;" % d,
                "events { worker_connections 4096; }",
                "http {",
                "  access_log off;",
                "  keepalive_requests 100000000;",
                "  keepalive_timeout 60s;",
                "  client_body_temp_path %s/body;" % d,
                "  proxy_temp_path %s/proxy;" % d,
                "  fastcgi_temp_path %s/fastcgi;" % d,
                "  uwsgi_temp_path %s/uwsgi;" % d,
                "  scgi_temp_path %s/scgi;" % d,
                "  server {",
                "    listen 127.0.0.1:%d;" % self.port,
                "    location = %s {" % path,
                "      default_type application/json;",
                "      return 200 '%s';" % self.BODY,
                "    }",
                "  }",
                "}", ""]))
        self.out = open(os.path.join(d, "stderr.log"), "wb")
        self.proc = subprocess.Popen([exe, "-p", d + "/", "-c", conf, "-e", d + "/error.log",
                                      "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out)
        self.url = "http://127.0.0.1:%d%s" % (self.port, path)
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket()
            ok = s.connect_ex(("127.0.0.1", self.port)) == 0
            s.close()
            if ok:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.errors()
                self.close()
                raise BenchError("nginx did not start: " + err[-500:])
            time.sleep(0.05)

    def errors(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    text += f.read().decode(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)       # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# -- /proc -------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid, key):
    """A "Key:   N kB" line of /proc/PID/status, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError("no %s in /proc/%d/status" % (key, pid))


def read_response(s):
    """(status line, headers dict lower-cased, body) of one response with a
    Content-Length, read from socket s."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise BenchError("connection closed before a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise BenchError("connection closed mid-response")
        body += chunk
    return lines[0], headers, body


def idle_connections(port, requests):
    """One keep-alive connection per request, opened and used one after
    another (so what stays is the cost of an idle connection, not of a
    burst): every answer must be a 200 that keeps the connection. Returns
    the sockets, open and idle (the caller closes them)."""
    socks = []
    try:
        for req in requests:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            socks.append(s)
            s.sendall(req)
            status, headers, body = read_response(s)
            if not status.startswith("HTTP/1.1 200"):
                raise BenchError("answered %r: %r" % (status, body[:100]))
            if headers.get("connection", "").lower() == "close":
                raise BenchError("the daemon does not keep the connection open")
    except (OSError, BenchError):
        for s in socks:
            s.close()
        raise
    return socks


def still_open(socks):
    """How many of these client TCP sockets the peer has not closed: still
    ESTABLISHED in /proc/net/tcp (a closed peer leaves them in CLOSE_WAIT)."""
    ports = {"%04X" % s.getsockname()[1] for s in socks}
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].split(":")[1] in ports and fields[3] == "01":
                n += 1
    return n


# -- the table -----------------------------------------------------------------

class Table:
    """Rows of (figure, value, ratio, target, note), printed aligned."""

    def __init__(self):
        self.rows = []

    def add(self, figure, value, ratio="", target="", note=""):
        self.rows.append((figure, value, ratio, target, note))

    def render(self):
        head = ("figure", "value", "ratio", "target", "note")
        rows = [head] + self.rows
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        out = []
        for i, r in enumerate(rows):
            out.append("  ".join(r[k].ljust(w[k]) for k in range(4)) + "  " + r[4])
            if i == 0:
                out.append("  ".join("-" * w[k] for k in range(4)) + "  ----")
        return "\n".join(l.rstrip() for l in out)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return 0.0
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
