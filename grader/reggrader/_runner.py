"""The process that runs a student's notebook cells inside the sandbox.

Self-contained (standard library and IPython): the grader copies this file into the
sandbox and runs ``python -I runner.py CMD_FD MSG_FD``. It starts an IPython shell (no
ZMQ, no Jupyter kernel), then reads commands (JSON lines) on CMD_FD and writes messages
(JSON lines) on MSG_FD:

    command  {"t": "run", "seq": n, "code": "...", "quiet": false}
    message  {"t": "ready", "python": "3.11.7 ..."}
             {"t": "out", "seq": n, "output": <nbformat output dict>}
             {"t": "done", "seq": n, "ok": true|false}

Everything this process sends is untrusted once student code has run in it (the student
can write to MSG_FD, replace ``sys.stdout`` or IPython's display machinery): the grader
treats the messages as data, attributes them to the cell it is running, caps their size,
and takes scores only from its own comparison.
"""

import json
import os
import sys

CHUNK = 64 * 1024


def main(argv):
    cmd_fd, msg_fd = int(argv[1]), int(argv[2])
    cmd_in = os.fdopen(cmd_fd, "r", encoding="utf-8", newline="\n")
    msg_out = os.fdopen(msg_fd, "w", encoding="utf-8", newline="\n")
    state = {"seq": None, "quiet": False}

    def send(obj):
        try:
            line = json.dumps(obj, allow_nan=True)
        except (TypeError, ValueError, RecursionError):
            line = json.dumps({"t": "out", "seq": state["seq"], "output": {
                "output_type": "stream", "name": "stderr",
                "text": "[grader: an output could not be serialized]\n"}})
        msg_out.write(line + "\n")
        msg_out.flush()

    def send_output(output):
        if state["quiet"]:
            return
        send({"t": "out", "seq": state["seq"], "output": output})

    class Stream:
        """A text stream that forwards what is written as nbformat stream outputs."""

        encoding = "utf-8"
        errors = "replace"

        def __init__(self, name, fd):
            self.name = name
            self._fd = fd
            self._buf = []
            self._size = 0

        def write(self, text):
            if not isinstance(text, str):
                text = str(text)
            self._buf.append(text)
            self._size += len(text)
            if self._size >= CHUNK:
                self.flush()
            return len(text)

        def writelines(self, lines):
            for line in lines:
                self.write(line)

        def flush(self):
            if self._buf:
                text = "".join(self._buf)
                self._buf, self._size = [], 0
                for i in range(0, len(text), CHUNK):
                    send_output({"output_type": "stream", "name": self.name, "text": text[i:i + CHUNK]})

        def isatty(self):
            return False

        def fileno(self):
            return self._fd

        def readable(self):
            return False

        def writable(self):
            return True

    stdout, stderr = Stream("stdout", 1), Stream("stderr", 2)
    sys.stdout, sys.stderr = stdout, stderr

    from traitlets.config import Config
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    def _clean(data):
        out = {}
        for k, v in (data or {}).items():
            if isinstance(v, (bytes, bytearray)):
                import base64

                v = base64.b64encode(bytes(v)).decode("ascii")
            out[str(k)] = v
        return out

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
            stdout.flush()
            stderr.flush()
            send_output({"output_type": "display_data", "data": _clean(data), "metadata": _clean(metadata)})

        def clear_output(self, wait=False):
            if not state["quiet"]:
                send({"t": "clear", "seq": state["seq"]})

    class Hook(DisplayHook):
        def start_displayhook(self):
            self._data, self._md = {}, {}

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            self._data, self._md = format_dict, md_dict or {}

        def finish_displayhook(self):
            stdout.flush()
            stderr.flush()
            send_output({
                "output_type": "execute_result",
                "execution_count": self.prompt_count,
                "data": _clean(self._data),
                "metadata": _clean(self._md),
            })

    class Shell(InteractiveShell):
        def _showtraceback(self, etype, evalue, stb):
            stdout.flush()
            stderr.flush()
            send_output({
                "output_type": "error",
                "ename": getattr(etype, "__name__", str(etype)),
                "evalue": str(evalue)[:10000],
                "traceback": [str(line) for line in stb][-60:],
            })

        def init_io(self):
            pass

        def ask_exit(self):
            print("[grader: exit() ignored; the notebook goes on]")

    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.InteractiveShell.colors = "NoColor"
    cfg.InteractiveShell.xmode = "Plain"
    Shell.display_pub_class = Publisher
    Shell.displayhook_class = Hook
    shell = Shell.instance(config=cfg)
    shell.user_ns["__name__"] = "__main__"
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    send({"t": "ready", "python": sys.version, "pid": os.getpid(), "uid": os.getuid()})
    while True:
        try:
            line = cmd_in.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            break
        try:
            cmd = json.loads(line)
        except ValueError:
            continue
        if cmd.get("t") == "exit":
            break
        if cmd.get("t") != "run":
            continue
        state["seq"], state["quiet"] = cmd.get("seq"), bool(cmd.get("quiet"))
        ok = False
        try:
            result = shell.run_cell(cmd.get("code", ""), store_history=True, silent=False)
            ok = bool(result.success)
        except KeyboardInterrupt:
            ok = False
        except BaseException as exc:  # noqa: BLE001 - keep serving later cells
            try:
                send_output({"output_type": "error", "ename": type(exc).__name__,
                             "evalue": str(exc)[:1000], "traceback": []})
            except BaseException:
                pass
        try:
            stdout.flush()
            stderr.flush()
        except BaseException:
            pass
        sys.stdout, sys.stderr = stdout, stderr
        send({"t": "done", "seq": state["seq"], "ok": ok})


if __name__ == "__main__":
    main(sys.argv)
