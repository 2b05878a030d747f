"""cfhookd run by hand on a terminal: its log lines carry a UTC time and a
level word ("2026-12-07T05:10:11.123Z info  http: ..."), never the raw
"<6>" that systemd reads; anything that is not a terminal keeps "<N>"."""

import datetime
import os
import pty
import re
import subprocess
import threading

from harness import SLOW, Daemon, binary, payment_body

TTY_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (error|warn |info |debug) \S")


class TerminalDaemon(Daemon):
    """A Daemon whose stdout and stderr are a pty, as in a person's shell.
    What the pty shows is copied into the usual log file, so wait_log()
    and the sanitizer check work unchanged."""

    def start(self, wait=True, timeout=None):
        from harness import Notify
        if self.notify is None:
            self.notify = Notify(os.path.join(self.tmp, "notify.sock"))
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC",
                            "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY")}
        env["NOTIFY_SOCKET"] = self.notify.path
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        master, slave = pty.openpty()
        self.logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([binary(), "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL, stdout=slave,
                                         stderr=slave, env=env, cwd=self.tmp)
        finally:
            os.close(slave)         # EOF on the master once cfhookd exits
        self.copier = threading.Thread(target=self._copy, args=(master,), daemon=True)
        self.copier.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def _copy(self, master):
        with open(self.log_path, "ab", buffering=0) as out:
            while True:
                try:
                    data = os.read(master, 4096)
                except OSError:         # EIO: the last slave fd closed
                    break
                if not data:
                    break
                out.write(data.replace(b"\r\n", b"\n"))
        os.close(master)


def test_terminal_lines_have_time_and_level():
    d = TerminalDaemon(start=False)
    try:
        before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        d.start()
        assert d.post_json(payment_body("77001")).status == 200
        d.wait_log(r"info  http: 200 new event_key=PAYMENT_SUCCESS_WEBHOOK:77001")
        d.stop()
        d.copier.join(10 * SLOW)
        after = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        lines = d.log().splitlines()
        assert len(lines) >= 3, lines
        for line in lines:
            m = TTY_LINE.match(line)
            assert m, "not a terminal log line: %r" % line
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            # UTC, and the time of writing (a little slack for rounding)
            slack = datetime.timedelta(seconds=1)
            assert before - slack <= t <= after + slack, (line, before, after)
        assert not any("<6>" in l or "<7>" in l for l in lines), lines
        assert any(l.endswith("info  stopped") for l in lines), lines
    finally:
        d.close()


def test_not_a_terminal_keeps_priority_prefix():
    """The same daemon with stderr in a file (what the harness and systemd
    give it): every line is "<N>text" exactly as before."""
    with Daemon() as d:
        assert d.post_json(payment_body("77002")).status == 200
        d.wait_log(r"<6>http: 200 new event_key=PAYMENT_SUCCESS_WEBHOOK:77002")
        d.stop()
        lines = d.log().splitlines()
        assert lines and all(re.match(r"^<[3467]>\S", l) for l in lines), lines
        assert not any(TTY_LINE.match(l) for l in lines)


def test_check_on_a_terminal():
    """`cfhookd --check` by hand: a config error reads as a person expects."""
    d = Daemon(start=False)
    try:
        with open(d.conf_path, "a") as f:
            f.write("forward_backof = 2\n")
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([binary(), "-c", d.conf_path, "--check"],
                                 stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        finally:
            os.close(slave)
        out = b""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        os.close(master)
        assert p.wait(10 * SLOW) == 1
        text = out.decode(errors="replace").replace("\r\n", "\n")
        m = re.search(r"^\S+Z error  ?%s:\d+: .*forward_backof" % re.escape(d.conf_path),
                      text, re.M)
        assert m and TTY_LINE.match(m.group(0)), text
        assert "<3>" not in text, text
    finally:
        d.close()
