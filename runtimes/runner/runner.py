"""NanoGrid Plus in-container runner.

Runs as PID 1 of a function's container, as the unprivileged user. Reads one JSON request per
line on stdin, runs the function once per request and writes one JSON report per line on stdout.
The function's own stdout/stderr go to pipes, never to this process's stdout, so only the runner
can write reports. Between requests every process the function left behind is killed.
"""
import json
import os
import selectors
import signal
import subprocess
import sys
import time

WORKDIR = "/workspace"
INPUT_PATH = "/tmp/nanogrid-input.json"


def make_undumpable():
    # The function runs under the same uid; without this it could ptrace us and forge a report.
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_key(path, key):
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except (OSError, ValueError):
        pass
    return None


def memory_peak():
    """Peak memory of this container's cgroup: v2 memory.peak, else v1 max_usage."""
    v2 = read_int("/sys/fs/cgroup/memory.peak")
    if v2 is not None:
        return v2
    return read_int("/sys/fs/cgroup/memory/memory.max_usage_in_bytes")


def memory_now():
    v2 = read_int("/sys/fs/cgroup/memory.current")
    if v2 is not None:
        return v2
    return read_int("/sys/fs/cgroup/memory/memory.usage_in_bytes")


def oom_kills():
    v2 = read_key("/sys/fs/cgroup/memory.events", "oom_kill")
    if v2 is not None:
        return v2
    return read_key("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill")


def kill_strays():
    """Kill every process of ours except this one (we are PID 1: kill(-1) spares us), then reap."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.002)
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                return


def run_process(argv, env, stdin_bytes, deadline, caps):
    """Run argv in its own process group; capture output with caps; kill the group at the deadline."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, cwd=WORKDIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
        )
    except OSError as err:
        return {"spawnError": "%s: %s" % (argv[0], err.strerror), "durationMillis": 0}
    sel = selectors.DefaultSelector()
    out = {"stdout": bytearray(), "stderr": bytearray()}
    seen = {"stdout": 0, "stderr": 0}
    streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    pending = memoryview(stdin_bytes)
    stdin_fd = proc.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    if pending:
        sel.register(stdin_fd, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    timed_out = False
    open_streams = len(streams)
    while open_streams > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        for key, _ in sel.select(min(remaining, 0.5)):
            fd = key.fd
            if fd == stdin_fd:
                try:
                    n = os.write(fd, pending[:65536])
                    pending = pending[n:]
                except (BrokenPipeError, OSError):
                    pending = memoryview(b"")
                if not pending:
                    sel.unregister(fd)
                    proc.stdin.close()
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            name = streams[fd]
            if not chunk:
                sel.unregister(fd)
                open_streams -= 1
                continue
            seen[name] += len(chunk)
            room = caps[name] - len(out[name])
            if room > 0:
                out[name] += chunk[:room]
    if timed_out:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    # Output closed: the process has exited or closed its pipes; wait for it up to the deadline.
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
    duration = (time.monotonic() - started) * 1000
    sel.close()
    for f in (proc.stdout, proc.stderr):
        f.close()
    if not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass
    code = proc.returncode
    return {
        "exitCode": code if code >= 0 else None,
        "signal": signal.Signals(-code).name if code < 0 else None,
        "timedOut": timed_out,
        "durationMillis": round(duration, 2),
        "stdout": out["stdout"].decode("utf-8", "replace"),
        "stderr": out["stderr"].decode("utf-8", "replace"),
        "stdoutBytes": seen["stdout"],
        "stderrBytes": seen["stderr"],
        "stdoutTruncated": seen["stdout"] > len(out["stdout"]),
        "stderrTruncated": seen["stderr"] > len(out["stderr"]),
    }


def handle(req):
    input_bytes = json.dumps(req.get("input")).encode()
    with open(INPUT_PATH, "wb") as f:
        f.write(input_bytes)
    os.makedirs(os.path.join(WORKDIR, "output"), exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "NANOGRID_INPUT": INPUT_PATH,
        "NANOGRID_OUTPUT_DIR": os.path.join(WORKDIR, "output"),
        "NANOGRID_REQUEST_ID": str(req.get("requestId", "")),
        "NANOGRID_FUNCTION_ID": str(req.get("functionId", "")),
    }
    caps = {"stdout": int(req.get("stdoutCapBytes", 1 << 20)), "stderr": int(req.get("stderrCapBytes", 1 << 20))}
    deadline = time.monotonic() + int(req["timeoutMs"]) / 1000.0
    base_memory = memory_now() or 0
    ooms_before = oom_kills() or 0
    cpu_before = os.times()
    report = {"phase": "run"}
    compile_argv = req.get("compile")
    if compile_argv:
        result = run_process(compile_argv, env, b"", deadline, caps)
        report["compileMillis"] = result["durationMillis"]
        if result.get("spawnError") or result["timedOut"] or result["exitCode"] != 0:
            report.update(result)
            report["phase"] = "compile"
    if report["phase"] == "run":
        report.update(run_process(req["command"], env, input_bytes, deadline, caps))
    kill_strays()
    cpu_after = os.times()
    peak = memory_peak()
    report["peakMemoryBytes"] = max(0, (peak or 0) - base_memory) if peak is not None else None
    report["cpuMillis"] = round(
        ((cpu_after.children_user - cpu_before.children_user) + (cpu_after.children_system - cpu_before.children_system)) * 1000
    )
    report["oomKilled"] = (oom_kills() or 0) > ooms_before
    return report


def main():
    make_undumpable()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            report = handle(json.loads(line))
        except Exception as err:  # a broken request must still get an answer
            report = {"runnerError": "%s: %s" % (type(err).__name__, err)}
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
