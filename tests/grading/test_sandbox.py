"""Sandboxed execution: limits, isolation (as root), survival of hung or dying kernels,
and one submission graded end to end into a JSON result.

Isolation tests need root (as in CI); without root they are skipped with the reason, and
the non-isolated mode is still exercised (limits, restarts) and reports what it does not
isolate.
"""

from __future__ import annotations

import json
import os

import pytest

from reggrader.execute import execute_items
from reggrader.job import prepare, run_job, sandbox_paths
from reggrader.sandbox import Limits, SandboxConfig, can_isolate, isolation_report
from tests.grading.helpers import solution_nb, submit

needs_root = pytest.mark.skipif(not can_isolate(), reason="isolation needs root and unshare (as in CI)")
FAST = Limits(cell_timeout=4, notebook_timeout=60, interrupt_grace=1, memory_bytes=2 * 2**30,
              output_bytes=64 * 1024, cell_output_bytes=16 * 1024)


@pytest.fixture
def paths(tmp_path):
    secret = tmp_path / "course"
    (secret / "solutions").mkdir(parents=True)
    (secret / "solutions" / "answer.txt").write_text("the secret solution")
    (secret / "gradebook.db").write_text("grades")
    hide, expose = sandbox_paths(tmp_path / "work", str(secret))
    return secret, hide, expose


def _run(cells, tmp_path, paths, limits=FAST, isolate=None):
    secret, hide, expose = paths
    sub = tmp_path / "sub.ipynb"
    sub.write_text("{}")
    items = [{"kind": "solution", "code": c} for c in cells]
    return execute_items(items, {"sub.ipynb": str(sub)}, limits, SandboxConfig(isolate=isolate),
                         hide=hide, expose=expose)


def _text(run):
    return "".join(str(o.get("text", "")) + str(o.get("evalue", "")) for o in run.outputs)


@needs_root
def test_kernel_runs_unprivileged_without_network_and_sees_only_its_submission(tmp_path, paths):
    secret, _, _ = paths
    runs, info = _run([
        "import os; print(os.getuid(), os.getgid(), os.getgroups())",
        "print(sorted(os.listdir('.')))",
        f"print(open({str(secret / 'solutions' / 'answer.txt')!r}).read())",
        f"print(open({str(secret / 'gradebook.db')!r}).read())",
        f"open({str(secret / 'gradebook.db')!r}, 'w').write('A+')",
        "import socket; socket.create_connection(('127.0.0.1', 22), timeout=1)",
        "import reglib, pathlib; p = pathlib.Path(reglib.__file__); open(p, 'a').write('# pwned')",
        "import numpy as np; print(np.arange(3).sum())",
    ], tmp_path, paths)
    assert info["isolated"] and [r.status for r in runs] == ["ok", "ok", "error", "error", "error", "error", "error", "ok"]
    uid = int(_text(runs[0]).split()[0])
    assert uid != 0 and _text(runs[0]).split()[1] == str(uid)
    assert _text(runs[1]).strip() == "['.ipython', 'sub.ipynb']"
    assert "No such file" in _text(runs[2]) and "secret solution" not in _text(runs[2])
    assert "No such file" in _text(runs[3]) and "No such file" in _text(runs[4])
    assert (secret / "gradebook.db").read_text() == "grades"
    assert "Network is unreachable" in _text(runs[5])  # even loopback: the namespace's lo is down
    assert any(w in _text(runs[6]) for w in ("Read-only", "Permission denied"))
    assert _text(runs[7]).strip() == "3"


@needs_root
def test_no_process_survives_the_notebook(tmp_path, paths):
    runs, info = _run([
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.1)'])\n"
        "print(p.pid)",
    ], tmp_path, paths)
    assert runs[0].status == "ok"
    # the child lived in the sandbox's PID namespace, which died with the kernel
    survivors = []
    for proc in os.listdir("/proc"):
        try:
            with open(f"/proc/{proc}/cmdline", "rb") as fh:
                if b"while True: time.sleep(0.1)" in fh.read():
                    survivors.append(proc)
        except OSError:
            continue
    assert survivors == []


@pytest.mark.parametrize("isolate", [pytest.param(True, marks=needs_root), False])
def test_timeouts_deaths_and_output_cap_cost_one_cell_each(tmp_path, paths, isolate):
    runs, info = _run([
        "def f(x):\n    return 2 * x",
        "import time\ntime.sleep(30)",                                   # interruptible
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass",  # ignores SIGINT
        "print(f(21))",                                                 # state survived the kill
        "sum(range(10**13))",                                           # uninterruptible C loop
        "import os; os._exit(0)",                                       # kills its process
        "print('x' * 5_000_000)",                                       # 5 MB on one line
        "import numpy as np\nbomb = np.ones(3 * 2**30 // 8)",            # 3 GiB > the 2 GiB limit
        "print(f(5))",
    ], tmp_path, paths, isolate=isolate)
    status = [r.status for r in runs]
    assert status == ["ok", "timeout", "timeout", "ok", "timeout", "died", "ok", "error", "ok"], status
    assert "interrupted" in runs[1].note and "killed" in runs[2].note
    assert _text(runs[3]).strip() == "42" and _text(runs[8]).strip() == "10"
    assert info["restarts"] == 3 and info["timeouts"] == 3 and info["deaths"] == 1
    assert runs[6].truncated_bytes > 4_000_000
    assert sum(len(json.dumps(o)) for r in runs for o in r.outputs) < 2 * FAST.output_bytes
    assert runs[7].outputs[0]["ename"] == "MemoryError" and "3.00 GiB" in _text(runs[7])
    assert info["isolated"] is isolate


def test_the_notebook_wall_clock_limit_skips_what_is_left(tmp_path, paths):
    lim = Limits(cell_timeout=3, notebook_timeout=4, interrupt_grace=0.5)
    runs, info = _run(["import time; time.sleep(2)", "time.sleep(2.5)", "print(1)", "print(2)"],
                      tmp_path, paths, limits=lim)
    assert [r.status for r in runs][:1] == ["ok"]
    assert runs[-1].status == "skipped" and "time limit" in runs[-1].note


def test_isolation_report_says_what_is_not_isolated():
    assert any("NOT ISOLATED" in line and "solutions/" in line for line in isolation_report(False))
    assert not any("NOT ISOLATED" in line for line in isolation_report(True))


def test_the_kernel_is_not_the_jupyter_one_but_behaves_like_it(tmp_path, paths):
    runs, _ = _run([
        "import warnings\nwarnings.warn('careful', RuntimeWarning)\n1 + 1",
        "%time y = 3",
        "from IPython.display import display, HTML\ndisplay(HTML('<b>x</b>'))",
        "import sys; sys.exit(2)",
        "exit()",
        "print(y)",
    ], tmp_path, paths)
    outs = runs[0].outputs
    assert outs[0]["name"] == "stderr" and "RuntimeWarning" in outs[0]["text"]
    assert outs[1]["output_type"] == "execute_result" and outs[1]["data"]["text/plain"] == "2"
    assert runs[1].status == "ok" and "Wall time" in _text(runs[1])
    assert runs[2].outputs[0]["data"]["text/html"] == "<b>x</b>"
    assert runs[3].status == "error" and runs[3].outputs[0]["ename"] == "SystemExit"
    assert _text(runs[5]).strip() == "3"


def test_one_submission_to_a_json_result(course, course_root, tmp_path):
    folder = tmp_path / "in"
    submit(folder, "alice", solution_nb(course_root))
    work = tmp_path / "work"
    manifest = prepare(course, "toy", folder, work, limits=FAST)
    assert [j["student"] for j in manifest["jobs"]] == ["alice"] and not manifest["quarantined"]
    job = json.loads((work / "jobs" / "00000.json").read_text())
    kernel_code = "".join(i["code"] for i in job["plan"]["items"])
    # the job carries expected outcomes, but nothing sent into the kernel does
    assert "expected" in json.dumps(job["plan"]["parts"]) and '"expected"' not in kernel_code
    result = run_job(work, 0, config=SandboxConfig())
    assert result == json.loads((work / "results" / "00000.json").read_text())
    assert result["status"] == "graded" and result["score"] == 7.0 == result["max_score"]
    assert [p["status"] for p in result["parts"]] == ["passed"] * 3
    assert result["execution"]["timeouts"] == 0 and result["manual"][0]["answered"]
    assert os.stat(work).st_mode & 0o077 == 0  # the work folder is the grader's alone
