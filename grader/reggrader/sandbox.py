"""Run untrusted notebook cells in a sandboxed process and talk to it safely.

:class:`Sandbox` starts ``_runner.py`` through ``_launch.py`` (see there for the set-up):

* as **root** (as in CI): fresh mount, network, IPC, UTS and PID namespaces; the course
  root, home directories, ``/tmp`` and the grader's work directory hidden; the Python
  installation and the course library bound back read-only; a scratch tmpfs holding only
  the submission; an unprivileged uid/gid per worker slot with ``no_new_privs``; no network;
* **without root**: the same runner, scratch directory and resource limits, but the
  kernel runs as the grader's own user: it can read what the grader can read (including
  ``solutions/`` and the gradebook), write where the grader can write, and use the
  network. :func:`isolation_report` says so, and the batch report repeats it.

Limits (:class:`Limits`): a per-cell timeout (SIGINT, then SIGKILL of the whole process
namespace after a grace period), a per-notebook wall-clock limit, an address-space
limit, a cap on output bytes, on file sizes, open files and processes.

Everything the sandbox sends back is untrusted data: messages are size-capped JSON lines,
attributed to the cell the grader is running (by sequence number), and never executed.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ._recorder import MIME

__all__ = ["Limits", "SandboxConfig", "Sandbox", "CellRun", "isolation_report", "can_isolate"]

HERE = Path(__file__).resolve().parent


@dataclass
class Limits:
    cell_timeout: float = 60.0          # seconds per cell (then SIGINT, then kill)
    notebook_timeout: float = 600.0     # seconds of wall clock for the whole notebook
    interrupt_grace: float = 2.0        # seconds between SIGINT and SIGKILL
    startup_timeout: float = 120.0      # seconds for the kernel to start
    memory_bytes: int = 6 * 2**30       # address space (RLIMIT_AS)
    output_bytes: int = 2 * 2**20       # outputs kept per notebook (the rest is dropped)
    cell_output_bytes: int = 256 * 2**10  # outputs kept per cell
    record_bytes: int = 32 * 2**20      # record data accepted per test cell
    file_bytes: int = 64 * 2**20        # largest file the kernel may write
    scratch_bytes: int = 256 * 2**20    # size of the scratch tmpfs (root mode)
    open_files: int = 256
    processes: int = 256                # threads count too (root mode: per sandbox uid)
    max_restarts: int = 4               # kernel restarts after a kill, per notebook

    @classmethod
    def from_dict(cls, d: dict | None) -> "Limits":
        return cls(**(d or {}))


@dataclass
class SandboxConfig:
    python: str = sys.executable
    isolate: bool | None = None         # None: isolate when running as root with unshare
    uid_base: int = 61000               # slot k runs as uid/gid uid_base + k
    hide: list[str] = field(default_factory=list)     # extra paths to hide
    expose: list[str] = field(default_factory=list)   # extra paths to bind read-only
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None          # where job scratch/config files go (root-only)

    def resolved_isolate(self) -> bool:
        return can_isolate() if self.isolate is None else bool(self.isolate)


_CAN_ISOLATE: bool | None = None


def can_isolate() -> bool:
    """True when namespaces and a uid switch work here (root, ``unshare``, and no seccomp
    profile forbidding namespaces, as in a default Docker container); probed once."""
    global _CAN_ISOLATE
    if _CAN_ISOLATE is None:
        ok = os.geteuid() == 0 and shutil.which("unshare") is not None and sys.platform == "linux"
        if ok:
            try:
                probe = subprocess.run(
                    ["unshare", "--mount", "--net", "--ipc", "--uts", "--pid", "--fork", "--mount-proc",
                     "true"], capture_output=True, timeout=20)
                ok = probe.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
        _CAN_ISOLATE = ok
    return _CAN_ISOLATE


def isolation_report(isolate: bool) -> list[str]:
    """Plain statements of what is and is not isolated (for the batch report)."""
    common = [
        "per-cell timeout, per-notebook wall-clock limit, memory (address space), output, "
        "file-size, open-file limits",
        "each submission runs in its own process with a scratch directory holding only it",
        "scores come from the grader's own comparison, never from the kernel",
    ]
    if isolate:
        return common + [
            "kernel runs as an unprivileged uid/gid (no supplementary groups, no_new_privs)",
            "course root (solutions/, gradebook, other students' files), home directories, "
            "/tmp and the grader's work directory are hidden; the Python installation and "
            "the course library are visible read-only",
            "no network (empty network namespace); own PID namespace: no process survives "
            "the notebook",
        ]
    return common + [
        "NOT ISOLATED (not running as root, or --no-isolation): the kernel runs as the "
        "grader's user; it can read solutions/, the gradebook and the job files (which hold "
        "the expected outputs), write any file the grader can write, see other processes and "
        "use the network. Grade untrusted submissions as root (as CI does), e.g. in a "
        "container with CAP_SYS_ADMIN.",
    ]


@dataclass
class CellRun:
    status: str                          # ok | error | timeout | died | skipped
    outputs: list[dict] = field(default_factory=list)
    records: list = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""
    truncated_bytes: int = 0
    output_bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class _Died(Exception):
    pass


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


class Sandbox:
    """One sandboxed kernel for one submission (restartable)."""

    def __init__(
        self,
        files: dict[str, str],
        limits: Limits,
        config: SandboxConfig,
        slot: int = 0,
        hide: list[str] | None = None,
        expose: list[str] | None = None,
    ) -> None:
        self.files = dict(files)            # scratch name -> path on the grader's side
        self.limits = limits
        self.config = config
        self.slot = slot
        self.isolate = config.resolved_isolate()
        self.hide = list(hide or []) + list(config.hide)
        self.expose = list(expose or []) + list(config.expose)
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.console = bytearray()
        self.output_bytes = 0
        self.events: list[str] = []
        self._seq = 0
        self._dir = Path(tempfile.mkdtemp(prefix="reggrader-job-", dir=config.workdir))
        os.chmod(self._dir, 0o700)

    # -- process management -------------------------------------------------------------
    def _env(self, scratch: str) -> dict[str, str]:
        env = {
            "PATH": os.pathsep.join([str(Path(self.config.python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": scratch,
            "USER": "student",
            "LOGNAME": "student",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": scratch if not self.isolate else "/tmp",
            "MPLBACKEND": "agg",
            "MPLCONFIGDIR": os.path.join(scratch, ".config", "matplotlib"),
            "IPYTHONDIR": os.path.join(scratch, ".ipython"),
            "XDG_CACHE_HOME": os.path.join(scratch, ".cache"),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "REGLIB_THREADS": "1",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "NBGRADER_EXECUTION": "autograde",
        }
        env.update(self.config.env)
        return env

    def start(self) -> None:
        lim = self.limits
        cmd_r, cmd_w = os.pipe()
        msg_r, msg_w = os.pipe()
        con_r, con_w = os.pipe()
        if self.isolate:
            scratch, runner = "/tmp/submission", "/tmp/.reggrader/runner.py"
        else:
            scratch = str(self._dir / f"scratch-{self.restarts}")
            runner = str(self._dir / "runner" / "runner.py")
        conf = {
            "isolate": self.isolate,
            "python": self.config.python,
            "runner_source": str(HERE / "_runner.py"),
            "runner": runner,
            "scratch": scratch,
            "scratch_bytes": lim.scratch_bytes,
            "files": self.files,
            "hide": self.hide,
            "expose": self.expose,
            "uid": self.config.uid_base + self.slot,
            "gid": self.config.uid_base + self.slot,
            "cmd_fd": cmd_r,
            "msg_fd": msg_w,
            "env": self._env(scratch),
            "limits": {
                "memory_bytes": lim.memory_bytes,
                "file_bytes": lim.file_bytes,
                "open_files": lim.open_files,
                "processes": lim.processes,
                "cpu_seconds": int(lim.notebook_timeout + 30),
            },
        }
        conf_path = self._dir / f"launch-{self.restarts}.json"
        conf_path.write_text(json.dumps(conf))
        launch = [self.config.python, "-I", str(HERE / "_launch.py"), str(conf_path)]
        if self.isolate:
            argv = ["unshare", "--mount", "--net", "--ipc", "--uts", "--pid", "--fork",
                    "--kill-child", "--mount-proc"] + launch
        else:
            argv = launch
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=con_w,
            stderr=con_w,
            pass_fds=(cmd_r, msg_w),
            start_new_session=True,
            close_fds=True,
        )
        for fd in (cmd_r, msg_w, con_w):
            os.close(fd)
        self._cmd = os.fdopen(cmd_w, "wb", buffering=0)
        self._q: queue.Queue = queue.Queue()
        self._msg_thread = threading.Thread(target=self._read_messages, args=(msg_r, self._q), daemon=True)
        self._msg_thread.start()
        self._con_thread = threading.Thread(target=self._read_console, args=(con_r,), daemon=True)
        self._con_thread.start()
        deadline = time.monotonic() + lim.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise _Died("the kernel did not start in time")
            try:
                msg = self._q.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg is None:
                self.kill()
                raise _Died("the kernel failed to start: " + self.console_text()[-2000:])
            if msg.get("t") == "ready":
                self.python_version = str(msg.get("python", ""))
                return

    def _read_messages(self, fd: int, q: queue.Queue) -> None:
        limit = max(self.limits.record_bytes, 1 << 20) + 4096
        with os.fdopen(fd, "rb") as fh:
            while True:
                try:
                    line = fh.readline(limit)
                except (OSError, ValueError):
                    break
                if not line:
                    break
                if not line.endswith(b"\n"):
                    if len(line) >= limit:  # an over-long message: drop it (and its tail)
                        q.put({"t": "_overlong"})
                        while line and not line.endswith(b"\n"):
                            line = fh.readline(limit)
                        continue
                try:
                    msg = json.loads(line)
                except (ValueError, RecursionError):
                    q.put({"t": "_garbage"})
                    continue
                if isinstance(msg, dict):
                    q.put(msg)
        q.put(None)

    def _read_console(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as fh:
            while True:
                try:
                    chunk = fh.read1(65536)
                except (OSError, ValueError):
                    break
                if not chunk:
                    break
                room = 65536 - len(self.console)
                if room > 0:
                    self.console += chunk[:room]

    def console_text(self) -> str:
        return self.console.decode("utf-8", "replace")

    def _kernel_pid(self) -> int | None:
        if self.proc is None:
            return None
        if not self.isolate:
            return self.proc.pid
        kids = _children(self.proc.pid)
        return kids[0] if kids else None

    def interrupt(self) -> None:
        pid = self._kernel_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        if self.proc is None:
            return
        pids = [self._kernel_pid(), self.proc.pid]
        for pid in pids:
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not self.isolate:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        try:
            self._cmd.close()
        except OSError:
            pass
        self.proc = None

    def close(self) -> None:
        """End the kernel (its state is never needed again: no graceful shutdown)."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- running cells --------------------------------------------------------------------
    def _keep_output(self, run: CellRun, out: dict) -> None:
        if not isinstance(out, dict) or out.get("output_type") not in (
            "stream", "display_data", "execute_result", "error"
        ):
            return
        data = out.get("data")
        if isinstance(data, dict) and MIME in data:
            size = len(json.dumps(data[MIME]))
            if size <= self.limits.record_bytes:
                run.records.append(data[MIME])
            else:
                run.note = "a record exceeded the size limit"
            return
        size = len(json.dumps(out))
        room = min(self.limits.output_bytes - self.output_bytes,
                   self.limits.cell_output_bytes - run.output_bytes)
        if size <= room:
            run.outputs.append(out)
            self.output_bytes += size
            run.output_bytes += size
            return
        if out.get("output_type") == "error":  # errors are kept, shortened
            short = {"output_type": "error", "ename": str(out.get("ename", ""))[:200],
                     "evalue": str(out.get("evalue", ""))[:1000],
                     "traceback": [str(t)[:2000] for t in (out.get("traceback") or [])[-5:]]}
            run.outputs.append(short)
            run.truncated_bytes += max(0, size - len(json.dumps(short)))
            return
        if out.get("output_type") == "stream" and room > 200:
            text = str(out.get("text", ""))[: room - 200]
            run.outputs.append({"output_type": "stream", "name": out.get("name", "stdout"), "text": text})
            self.output_bytes += len(text) + 200
            run.output_bytes += len(text) + 200
            size -= len(text)
        run.truncated_bytes += size

    def run(self, code: str, timeout: float, quiet: bool = False) -> CellRun:
        """Run one cell; never raises for anything the cell does."""
        run = CellRun("ok")
        start = time.monotonic()
        if self.proc is None:
            run.status, run.note = "died", "the kernel is not running"
            return run
        self._seq += 1
        seq = self._seq
        try:
            self._cmd.write((json.dumps({"t": "run", "seq": seq, "code": code, "quiet": quiet}) + "\n").encode())
        except OSError:
            self.kill()
            run.status, run.note = "died", "the kernel had exited"
            return run
        deadline = start + timeout
        interrupted_at = None
        while True:
            now = time.monotonic()
            wait = (interrupted_at + self.limits.interrupt_grace if interrupted_at else deadline) - now
            if wait <= 0:
                if interrupted_at is None:
                    interrupted_at = now
                    self.interrupt()
                    continue
                self.kill()
                run.status = "timeout"
                run.note = f"killed after {timeout:.0f} s (it did not stop on an interrupt)"
                break
            try:
                msg = self._q.get(timeout=wait)
            except queue.Empty:
                continue
            if msg is None:
                code_ = self.proc.poll() if self.proc else None
                self.kill()
                run.status = "died"
                run.note = "the kernel died" + (f" (exit status {code_})" if code_ is not None else "")
                break
            kind = msg.get("t")
            if kind in ("_overlong", "_garbage"):
                run.truncated_bytes += 1
                continue
            if msg.get("seq") != seq:
                continue
            if kind == "out":
                self._keep_output(run, msg.get("output"))
            elif kind == "clear":
                run.outputs = [o for o in run.outputs if o.get("output_type") == "error"]
            elif kind == "done":
                if interrupted_at is not None:
                    run.status = "timeout"
                    run.note = f"interrupted after {timeout:.0f} s"
                else:
                    run.status = "ok" if msg.get("ok") is True else "error"
                break
        run.seconds = round(time.monotonic() - start, 3)
        if run.truncated_bytes:
            run.outputs.append({
                "output_type": "stream",
                "name": "stderr",
                "text": f"[grader: output truncated, {run.truncated_bytes} bytes dropped]\n",
            })
        return run

    def restart(self) -> None:
        self.kill()
        self.restarts += 1
        self.start()
