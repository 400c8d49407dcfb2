"""Sandbox set-up, run as root inside fresh namespaces, just before the student's code.

``reggrader.sandbox`` starts ``unshare --mount --net --ipc --uts --pid --fork
--mount-proc python -I _launch.py CONFIG``. This process (trusted grader code, still
root, alone in its namespaces) then:

1. makes every mount private, opens the paths the kernel needs (the Python installation,
   the virtual environment, the course library) and reads the files the scratch
   directory must hold (the submission and the runner);
2. mounts an empty tmpfs over every hidden path (the course root with ``solutions/``,
   the gradebook and other students' work; ``/root``, ``/home``, ``/tmp``, ``/dev/shm``,
   the grader's work directory) and binds the needed paths back **read-only**;
3. creates the scratch directory (a size-limited tmpfs holding only the submission) owned
   by the sandbox user, sets resource limits, drops to that unprivileged uid/gid with no
   supplementary groups and ``no_new_privs``, and execs the runner.

The network namespace has only a loopback interface that is down: no network. Without
root (``isolate: false``) only steps 3's limits and scratch directory apply.
"""

import ctypes
import json
import os
import resource
import signal
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    if _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} -> {target}: {os.strerror(err)}")


def _isolate(conf, files):
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = []
    for path in conf["expose"]:
        if os.path.exists(path):
            keep.append((os.open(path, os.O_PATH), path))
    for path in conf["hide"]:
        if os.path.isdir(path):
            mode = "1777" if path in ("/tmp", "/dev/shm", "/var/tmp") else "755"
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size=16m,mode={mode}")
    for fd, path in keep:
        if not os.path.exists(path):
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "a").close()
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    scratch = conf["scratch"]
    os.makedirs(scratch, exist_ok=True)
    _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={int(conf['scratch_bytes'])},mode=700,uid={conf['uid']},gid={conf['gid']}")
    runner_dir = os.path.dirname(conf["runner"])
    os.makedirs(runner_dir, exist_ok=True)
    os.chmod(runner_dir, 0o755)
    with open(conf["runner"], "wb") as fh:
        fh.write(files.pop("__runner__"))
    os.chmod(conf["runner"], 0o644)


def _write_scratch(conf, files):
    scratch = conf["scratch"]
    for name, data in files.items():
        dest = os.path.join(scratch, name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as fh:
            fh.write(data)
        if conf["isolate"]:
            os.chown(dest, conf["uid"], conf["gid"])
    if conf["isolate"]:
        for root, dirs, _ in os.walk(scratch):
            for d in dirs:
                os.chown(os.path.join(root, d), conf["uid"], conf["gid"])


def _limits(conf):
    lim = conf["limits"]
    pairs = [
        (resource.RLIMIT_AS, lim.get("memory_bytes")),
        (resource.RLIMIT_FSIZE, lim.get("file_bytes")),
        (resource.RLIMIT_NOFILE, lim.get("open_files")),
        (resource.RLIMIT_CPU, lim.get("cpu_seconds")),
        (resource.RLIMIT_CORE, 0),
    ]
    if conf["isolate"]:  # per-uid: only meaningful for the sandbox's own uid
        pairs.append((resource.RLIMIT_NPROC, lim.get("processes")))
    for which, value in pairs:
        if value is not None:
            resource.setrlimit(which, (int(value), int(value)))


def main(argv):
    with open(argv[1]) as fh:
        conf = json.load(fh)
    files = {}
    for name, path in conf["files"].items():
        with open(path, "rb") as fh:
            files[name] = fh.read()
    with open(conf["runner_source"], "rb") as fh:
        files["__runner__"] = fh.read()
    if conf["isolate"]:
        _isolate(conf, files)
    else:
        os.makedirs(os.path.dirname(conf["runner"]), exist_ok=True)
        with open(conf["runner"], "wb") as fh:
            fh.write(files.pop("__runner__"))
    _write_scratch(conf, files)
    os.chdir(conf["scratch"])
    os.umask(0o077)
    _limits(conf)
    if conf["isolate"]:
        os.setgroups([])
        os.setresgid(conf["gid"], conf["gid"], conf["gid"])
        os.setresuid(conf["uid"], conf["uid"], conf["uid"])
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS)")
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getuid() == 0 or os.geteuid() == 0:
            raise RuntimeError("failed to drop root")
    env = dict(conf["env"])
    args = [conf["python"], "-I", conf["runner"], str(conf["cmd_fd"]), str(conf["msg_fd"])]
    os.execve(conf["python"], args, env)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except BaseException as exc:  # noqa: BLE001 - tell the grader why the sandbox failed
        sys.stderr.write(f"reggrader sandbox set-up failed: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(70)
