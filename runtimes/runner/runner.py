"""NanoGrid Plus in-container runner.

Runs as PID 1 of a function's container, as the unprivileged user. Reads one JSON request per
line on stdin, runs the function once per request and writes one JSON report per line on stdout.
The function's own stdout/stderr go to pipes, never to this process's stdout, so only the runner
can write reports. After every run each process the function left behind is killed, output/ and
/tmp are emptied, and a change to the code tree is reported so the worker can retire the container.
"""
import atexit
import io
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
import gc

WORKDIR = "/workspace"
OUTPUT_DIR = os.path.join(WORKDIR, "output")
INPUT_PATH = "/tmp/nanogrid-input.json"
# The compiled program lives apart from /tmp's per-run contents and is rebuilt when it changes.
BUILD_DIR = "/tmp/.nanogrid-build"


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


def empty_dir(path, keep=()):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        if name in keep:
            continue
        full = os.path.join(path, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
        except OSError:
            pass


def tree_state(root):
    """What the code tree looks like (outside output/): a run that changes it spoils the container."""
    state = []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root and "output" in dirnames:
            dirnames.remove("output")
        dirnames.sort()
        for name in sorted(filenames) + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            state.append((dirpath, name, st.st_mode, st.st_size, st.st_mtime_ns))
    return state


def forked_python(env, script, code):
    """Child side of the python fast path: run main.py in this already-started interpreter
    (the modules it needs are imported, and main.py compiled, in the runner before the fork)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [script]
    sys.path[:] = [WORKDIR] + [p for p in sys.path if p]
    # As with `python3 -u`: unbuffered binary layers, text written through at once.
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True)
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    status = 0
    try:
        if code is None:  # did not compile in the runner: compile here, for the usual traceback
            with open(script, "rb") as f:
                code = compile(f.read(), script, "exec")
        exec(code, main.__dict__)
    except SystemExit as stop:
        if stop.code is None:
            status = 0
        elif isinstance(stop.code, int):
            status = stop.code
        else:
            print(stop.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    try:
        threading._shutdown()  # wait for non-daemon threads, as a normal exit does
        atexit._run_exitfuncs()
        # As interpreter shutdown would: drop the function's globals (and those of its own modules)
        # so files it left open are flushed and closed before os._exit.
        for name, module in list(sys.modules.items()):
            if name == "__main__" or (getattr(module, "__file__", None) or "").startswith(WORKDIR + "/"):
                try:
                    module.__dict__.clear()
                except Exception:
                    pass
        main.__dict__.clear()
        gc.collect()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(status & 0xFF)


_compiled = {}


def compiled(script):
    """main.py compiled once per version of the file, in the runner, so each fork only executes it."""
    path = os.path.join(WORKDIR, script)
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
        hit = _compiled.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
        with open(path, "rb") as f:
            code = compile(f.read(), script, "exec")
    except (OSError, SyntaxError, ValueError):
        return None
    _compiled[path] = (stamp, code)
    return code


class Fork:
    """A Popen-like handle on a forked python child."""

    def __init__(self, env, script):
        code = compiled(script)
        # Objects that exist now are left alone by the child's garbage collector, so the fork
        # does not copy the interpreter's pages one by one.
        gc.freeze()
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                os.dup2(in_r, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                os.closerange(3, 1024)
                os.chdir(WORKDIR)
                forked_python(env, script, code)
            finally:
                os._exit(1)
        gc.unfreeze()
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        self.pid = pid
        self.stdin = os.fdopen(in_w, "wb", 0)
        self.stdout = os.fdopen(out_r, "rb", 0)
        self.stderr = os.fdopen(err_r, "rb", 0)
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid != 0:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("main.py", timeout)
            time.sleep(0.001)
        return self.returncode


def spawn(argv, env, fork_script):
    if fork_script:
        return Fork(env, fork_script)
    return subprocess.Popen(
        argv, cwd=WORKDIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
    )


def run_process(argv, env, stdin_bytes, deadline, caps, fork_script=None):
    """Run argv in its own process group; capture output with caps; kill the group at the deadline."""
    started = time.monotonic()
    try:
        proc = spawn(argv, env, fork_script)
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
    # A pidfd wakes the loop the moment the entrypoint exits, even while strays hold its pipes.
    pidfd = None
    try:
        pidfd = os.pidfd_open(proc.pid)
        sel.register(pidfd, selectors.EVENT_READ)
    except (AttributeError, OSError):
        pidfd = None
    exited_at = None
    timed_out = False
    open_streams = len(streams)
    drain_until = None
    while open_streams > 0:
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            timed_out = proc.poll() is None
            break
        # Once the entrypoint has exited, whatever it left in the background may hold the pipes
        # open: read what is already written, briefly, then stop (the strays are killed below).
        if drain_until is None and proc.poll() is not None:
            exited_at = exited_at or now
            drain_until = now + 0.05
        if drain_until is not None and now >= drain_until:
            break
        wait = min(remaining, 0.05 if drain_until is not None else 0.1)
        for key, _ in sel.select(wait):
            fd = key.fd
            if fd == pidfd:
                sel.unregister(fd)
                exited_at = time.monotonic()
                continue
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
    if timed_out or drain_until is not None:
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
    duration = ((exited_at if exited_at and not timed_out else time.monotonic()) - started) * 1000
    sel.close()
    if pidfd is not None:
        os.close(pidfd)
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


class Runner:
    def __init__(self):
        self.build_stamp = None  # (mtime_ns, size) of the compiled program we built

    def compile_if_needed(self, req, env, deadline, caps, report):
        argv = req.get("compile")
        if not argv:
            return True
        output = req.get("compileOutput")
        try:
            st = os.stat(output)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp is not None and stamp == self.build_stamp:
            return True
        os.makedirs(BUILD_DIR, exist_ok=True)
        result = run_process(argv, env, b"", deadline, caps)
        report["compileMillis"] = result["durationMillis"]
        if result.get("spawnError") or result["timedOut"] or result["exitCode"] != 0:
            report.update(result)
            report["phase"] = "compile"
            return False
        st = os.stat(output)
        self.build_stamp = (st.st_mtime_ns, st.st_size)
        return True

    def handle(self, req):
        # A fresh start for every run: nothing of the previous one is left in output/ or /tmp.
        empty_dir("/tmp", keep=(os.path.basename(BUILD_DIR),))
        empty_dir(OUTPUT_DIR)
        os.makedirs(OUTPUT_DIR, exist_ok=True)
        input_bytes = json.dumps(req.get("input")).encode()
        with open(INPUT_PATH, "wb") as f:
            f.write(input_bytes)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",
            "NANOGRID_INPUT": INPUT_PATH,
            "NANOGRID_OUTPUT_DIR": OUTPUT_DIR,
            "NANOGRID_REQUEST_ID": str(req.get("requestId", "")),
            "NANOGRID_FUNCTION_ID": str(req.get("functionId", "")),
        }
        caps = {"stdout": int(req.get("stdoutCapBytes", 1 << 20)), "stderr": int(req.get("stderrCapBytes", 1 << 20))}
        deadline = time.monotonic() + int(req["timeoutMs"]) / 1000.0
        tree_before = tree_state(WORKDIR)
        base_memory = memory_now() or 0
        ooms_before = oom_kills() or 0
        cpu_before = os.times()
        report = {"phase": "run"}
        if self.compile_if_needed(req, env, deadline, caps, report):
            fork_script = req.get("forkScript")
            report.update(run_process(req["command"], env, input_bytes, deadline, caps, fork_script))
        kill_strays()
        cpu_after = os.times()
        peak = memory_peak()
        report["peakMemoryBytes"] = max(0, (peak or 0) - base_memory) if peak is not None else None
        report["baseMemoryBytes"] = base_memory
        report["cpuMillis"] = round(
            ((cpu_after.children_user - cpu_before.children_user) + (cpu_after.children_system - cpu_before.children_system)) * 1000
        )
        report["oomKilled"] = (oom_kills() or 0) > ooms_before
        report["workspaceChanged"] = tree_state(WORKDIR) != tree_before
        return report


def main():
    make_undumpable()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runner = Runner()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            report = runner.handle(json.loads(line))
        except Exception as err:  # a broken request must still get an answer
            report = {"runnerError": "%s: %s" % (type(err).__name__, err)}
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
