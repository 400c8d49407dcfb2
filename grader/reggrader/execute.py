"""Execute a plan's items in a sandbox, surviving kernels that hang or die.

A cell that does not stop on SIGINT (a C loop, a handler that ignores it) or that kills
its process (``os._exit``, a memory bomb the OS ends) costs that cell, not the notebook:
the grader starts a fresh kernel, silently re-runs the cells that had defined the
student's functions (setup, answers and added cells that completed), skips the cell
that failed, and goes on. A per-notebook wall-clock limit and a cap on restarts bound
the total; items left when they run out are reported as skipped.
"""

from __future__ import annotations

import time

from .sandbox import CellRun, Limits, Sandbox, SandboxConfig, _Died

__all__ = ["execute_items"]

REPLAYED = ("context", "solution", "added")


def execute_items(
    items: list[dict],
    files: dict[str, str],
    limits: Limits,
    config: SandboxConfig,
    slot: int = 0,
    hide: list[str] | None = None,
    expose: list[str] | None = None,
) -> tuple[list[CellRun], dict]:
    """Run every item; return one :class:`CellRun` per item and facts about the run."""
    start = time.monotonic()
    deadline = start + limits.notebook_timeout
    runs: list[CellRun | None] = [None] * len(items)
    info = {"restarts": 0, "timeouts": 0, "deaths": 0, "isolated": config.resolved_isolate(),
            "events": [], "console": "", "python": ""}
    sb = Sandbox(files, limits, config, slot=slot, hide=hide, expose=expose)
    replay: list[int] = []          # items to re-run after a restart
    bad: set[int] = set()

    def left() -> float:
        return deadline - time.monotonic()

    started = False

    def ensure_running() -> bool:
        """Start (or restart and replay); False when the time or restart budget is spent."""
        nonlocal started
        while sb.proc is None:
            if left() <= 0:
                return False
            if started and sb.restarts >= limits.max_restarts:
                info["events"].append("restart budget spent")
                return False
            try:
                if not started:
                    sb.start()
                    started = True
                else:
                    sb.restart()
                    info["restarts"] += 1
            except _Died as exc:
                info["events"].append(f"kernel start failed: {exc}")
                if not started:
                    info["start_failed"] = True
                return False
            info["python"] = getattr(sb, "python_version", "")
            for k in list(replay):
                if left() <= 0:
                    return False
                r = sb.run(items[k]["code"], min(limits.cell_timeout, max(left(), 0.1)), quiet=True)
                if r.status in ("timeout", "died"):
                    replay.remove(k)
                    bad.add(k)
                    info["events"].append(f"item {k} failed again when replayed ({r.status})")
                    if sb.proc is None:
                        break  # that kernel is gone: restart again without the item
        return True

    try:
        for k, item in enumerate(items):
            if not ensure_running() or left() <= 0:
                runs[k] = CellRun("skipped", note="the notebook's time limit or restart budget was spent")
                continue
            timeout = min(limits.cell_timeout, max(left(), 0.1))
            run = sb.run(item["code"], timeout)
            runs[k] = run
            if run.status == "timeout":
                info["timeouts"] += 1
                info["events"].append(f"item {k} ({item['kind']}) timed out: {run.note}")
            elif run.status == "died":
                info["deaths"] += 1
                info["events"].append(f"item {k} ({item['kind']}): {run.note}")
            if item["kind"] in REPLAYED and run.status in ("ok", "error") and k not in bad:
                replay.append(k)
    finally:
        info["console"] = sb.console_text()[-4000:]
        info["seconds"] = round(time.monotonic() - start, 3)
        info["output_bytes"] = sb.output_bytes
        sb.close()
    return [r if r is not None else CellRun("skipped") for r in runs], info
