from reglib.progress import progress


def test_live_bar_writes_to_stdout(capsys, monkeypatch):
    monkeypatch.delenv("REGLIB_PROGRESS", raising=False)
    for _ in progress(range(3), desc="live"):
        pass
    out = capsys.readouterr().out
    assert "live" in out and "3/3" in out


def test_static_bar_prints_only_the_final_line(capsys, monkeypatch):
    monkeypatch.setenv("REGLIB_PROGRESS", "static")
    bar = progress(range(50), desc="static", mininterval=0)
    for i in bar:
        bar.set_postfix({"step": i})
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and "\r" not in out
    assert "50/50" in lines[0] and "step=49" in lines[0]


def test_disabled_bar_prints_nothing(capsys, monkeypatch):
    for mode in ("static", ""):
        monkeypatch.setenv("REGLIB_PROGRESS", mode)
        for _ in progress(range(3), disable=True):
            pass
    assert capsys.readouterr().out == ""
