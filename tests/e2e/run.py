#!/usr/bin/env python3
"""Runs the end-to-end tests: every function test_* in tests/e2e/test_*.py.

    tests/e2e/run.py --build build [-j 3] [-k substring] [--store postgresql] [FILE...]

Each test file runs in its own process (several at once: most tests wait on
timers and sockets, not the CPU); each test function counts once. A test passes
when it returns, is skipped when it raises harness.Skip (with its reason), and
fails on anything else. The last line is "e2e: N passed, N failed[, N skipped]".
With --store postgresql every daemon keeps its events in a PostgreSQL database
of its own on the server $CFHOOK_TEST_PG names (harness.py); the lines are
then tagged [postgresql] and the last one starts "e2e-postgresql:".
"""

import argparse
import concurrent.futures
import glob
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
FILE_TIMEOUT = 900          # a hung file fails, it never hangs CI


def run_file(path, keyword):
    """Child mode: run one file's tests, print one JSON line per test."""
    sys.path.insert(0, HERE)
    import harness
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    names = [n for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n))]
    names.sort(key=lambda n: getattr(mod, n).__code__.co_firstlineno)
    for n in names:
        full = "%s::%s" % (os.path.basename(path), n)
        if keyword and keyword not in full:
            continue
        t0 = time.monotonic()
        out = io.StringIO()
        old = sys.stdout
        sys.stdout = out
        try:
            getattr(mod, n)()
            res, detail = "pass", ""
        except harness.Skip as e:
            res, detail = "skip", str(e)
        except BaseException:
            res, detail = "fail", traceback.format_exc()
        finally:
            sys.stdout = old
        print(json.dumps({"name": full, "result": res, "detail": detail,
                          "output": out.getvalue()[-6000:],
                          "seconds": round(time.monotonic() - t0, 2)}), flush=True)


def spawn(path, build, keyword, store):
    env = dict(os.environ, CFHOOKD_BUILD=build, CFHOOK_E2E_STORE=store)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", path]
    if keyword:
        cmd += ["-k", keyword]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=FILE_TIMEOUT)
        text, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode(errors="replace")
        rc = "timeout after %ds" % FILE_TIMEOUT
    results, stray = [], []
    for line in text.splitlines():
        try:
            results.append(json.loads(line))
        except ValueError:
            stray.append(line)
    if rc != 0 or (not results and stray):
        results.append({"name": os.path.basename(path), "result": "fail",
                        "detail": "test file exited %s\n%s" % (rc, "\n".join(stray[-60:])),
                        "output": "", "seconds": round(time.monotonic() - t0, 2)})
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("-j", type=int, default=int(os.environ.get("E2E_JOBS", "3")))
    ap.add_argument("-k", default="")
    ap.add_argument("--store", default=os.environ.get("CFHOOK_E2E_STORE", "sqlite"),
                    choices=("sqlite", "postgresql"))
    ap.add_argument("--child")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    if a.child:
        run_file(a.child, a.k)
        return 0
    build = os.path.abspath(a.build)
    files = a.files or sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    counts = {"pass": 0, "fail": 0, "skip": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.j)) as ex:
        futs = [ex.submit(spawn, f, build, a.k, a.store) for f in files]
        for fut in concurrent.futures.as_completed(futs):
            for r in fut.result():
                counts[r["result"]] += 1
                tag = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[r["result"]]
                where = "" if a.store == "sqlite" else " [%s]" % a.store
                print("%s %s%s (%.1fs)%s" % (tag, r["name"], where, r["seconds"],
                                            " - " + r["detail"] if r["result"] == "skip"
                                            else ""))
                if r["result"] == "fail":
                    print(r["output"] + r["detail"])
                sys.stdout.flush()
    line = "%s: %d passed, %d failed" % ("e2e" if a.store == "sqlite" else "e2e-" + a.store,
                                         counts["pass"], counts["fail"])
    if counts["skip"]:
        line += ", %d skipped" % counts["skip"]
    print(line)
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
