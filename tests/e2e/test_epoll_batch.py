"""A libmicrohttpd worker handed exactly a full batch of events at once
(include/http_epoll.h): 128 requests arriving together on one worker's
keep-alive connections are all answered, and so is a new connection whose
wake-up arrives with 127 closing ones. Before the guard, the worker slept
on such a batch until the next event or the idle timeout.

To make the events arrive together the test stops cfhookd (SIGSTOP, and
waits until every thread is stopped), makes them happen, and lets it go
on. Which worker holds a connection is read from /proc: libmicrohttpd
gives a connection handed over to the worker numbered (descriptor mod
workers), and cfhookd runs two."""

import os
import signal
import socket
import time

from harness import Daemon, SLOW, accepted_inodes, payment_body
from test_flood import close_all, need_nofile, restore_nofile

# No connection times out during a test: a worker asleep on its batch would
# otherwise be woken by the first timeout, and the test would not see it.
CONFIG = {"idle_timeout": "600", "header_timeout": "600", "request_timeout": "600"}
WORKERS = 2
BATCH = 128                     # libmicrohttpd 0.9.75's epoll batch
CONNS = 300                     # about 150 on each worker


def socket_fds(pid):
    """inode of each socket cfhookd holds -> its descriptor number."""
    out = {}
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if link.startswith("socket:["):
            out[int(link[8:-1])] = int(name)
    return out


def by_worker(d, socks):
    """The connections, grouped by the worker that holds them, once cfhookd
    has accepted them all."""
    deadline = time.monotonic() + 10 * SLOW
    while True:
        fds, inodes = socket_fds(d.proc.pid), accepted_inodes(d.port)
        fd_of = [fds.get(inodes.get(s.getsockname()[1])) for s in socks]
        if None not in fd_of:
            break
        assert time.monotonic() < deadline, "cfhookd never accepted every connection"
        time.sleep(0.05)
    groups = [[] for _ in range(WORKERS)]
    for s, fd in zip(socks, fd_of):
        groups[fd % WORKERS].append(s)
    return groups


def all_stopped(pid):
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("T", "t"):
            return False
    return True


class Stopped:
    """cfhookd stopped, every thread of it, for the length of the block."""

    def __init__(self, d):
        self.pid = d.proc.pid

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not all_stopped(self.pid):
            assert time.monotonic() < deadline, "cfhookd did not stop"
            time.sleep(0.005)

    def __exit__(self, *exc):
        os.kill(self.pid, signal.SIGCONT)


def read_status(s, timeout):
    """The status line of one whole response (its body read too, so the
    connection is ready for the next), or what came before a close or the
    timeout."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return data.split(b"\r\n", 1)[0]
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                break
            body += chunk
    except socket.timeout:
        return data.split(b"\r\n", 1)[0]
    return head.split(b"\r\n", 1)[0]


def open_held(d, n):
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", d.port)))
    except BaseException:
        close_all(socks)
        raise
    return socks


def test_a_full_batch_of_requests_is_answered():
    limits = need_nofile(2048)
    socks = []
    try:
        with Daemon(config=CONFIG) as d:
            socks = open_held(d, CONNS)
            groups = by_worker(d, socks)
            assert min(len(g) for g in groups) >= BATCH, [len(g) for g in groups]
            n = 0
            for rnd in range(2):
                for w, group in enumerate(groups):
                    batch = group[:BATCH]
                    reqs = [d.raw_post(payment_body("eb%d_%d_%03d" % (rnd, w, i)))
                            for i in range(BATCH)]
                    for s, req in zip(batch, reqs):     # all but the last byte
                        s.sendall(req[:-1])
                    time.sleep(0.2)
                    with Stopped(d):
                        for s, req in zip(batch, reqs):
                            s.sendall(req[-1:])
                    t0 = time.monotonic()
                    statuses = [read_status(s, max(0.1, 10 * SLOW - (time.monotonic() - t0)))
                                for s in batch]
                    n += BATCH
                    assert statuses == [b"HTTP/1.1 200 OK"] * BATCH, \
                        "round %d, worker %d: %d of %d answered" % (
                            rnd, w, sum(1 for x in statuses if x.startswith(b"HTTP/1.1 200")),
                            BATCH)
            assert d.rows("SELECT count(*) FROM events")[0][0] == n
    finally:
        close_all(socks)
        restore_nofile(limits)


def test_a_new_connection_woken_with_a_full_batch_is_served():
    limits = need_nofile(2048)
    socks = []
    try:
        with Daemon(config=CONFIG) as d:
            for rnd in range(8):     # the wake-up races the batch: repeat
                socks = open_held(d, CONNS)
                groups = by_worker(d, socks)
                assert min(len(g) for g in groups) >= BATCH - 1, [len(g) for g in groups]
                new = None
                try:
                    with Stopped(d):
                        # 127 closing connections on each worker, and one
                        # new connection waiting to be accepted: its
                        # worker's wake-up is the 128th event
                        for g in groups:
                            close_all(g[:BATCH - 1])
                        new = socket.create_connection(("127.0.0.1", d.port))
                    req = d.raw_post(payment_body("ebn%d" % rnd))
                    new.sendall(req)
                    status = read_status(new, 10 * SLOW)
                    assert status == b"HTTP/1.1 200 OK", "round %d: %r" % (rnd, status)
                finally:
                    if new is not None:
                        new.close()
                    close_all(socks)
                    socks = []
                time.sleep(0.3)
    finally:
        close_all(socks)
        restore_nofile(limits)
