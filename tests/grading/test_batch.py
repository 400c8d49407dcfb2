"""Batches: W worker processes, one trusted writer, sharding by index, merge.

The sharded run uses separate OS processes started through the command line, as a
Kubernetes Indexed Job, a Slurm array or GNU parallel would start them, with the index
in ``JOB_COMPLETION_INDEX`` / ``SLURM_ARRAY_TASK_ID``; its results must merge into the
same gradebook state as one local batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reggrader.batch import grade
from reggrader.gradebook import gradebook_scores, merge
from reggrader.job import job_indices, prepare
from reggrader.sandbox import Limits
from tests.grading.helpers import RIGHT_L2, WRONG_L2, answer, release_nb, solution_nb, submit

LIMITS = Limits(cell_timeout=20, notebook_timeout=120, interrupt_grace=1)
EXPECTED = {"ann": 7.0, "ben": 0.0, "cat": 5.0, "dan": 7.0, "eve": 3.0}


def make_class(folder, course_root):
    submit(folder, "ann", solution_nb(course_root))
    submit(folder, "ben", release_nb(course_root))
    submit(folder, "cat", answer(solution_nb(course_root), "l2_penalty", WRONG_L2))
    submit(folder, "dan", answer(solution_nb(course_root), "l2_penalty", RIGHT_L2), name="Copy of toy.ipynb")
    eve = answer(release_nb(course_root), "ridge", solution_nb(course_root).cells[9].source)
    submit(folder, "eve", eve)


def test_job_indices_cover_every_job_exactly_once():
    shards = [job_indices(11, shard=s, shards=3) for s in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11))
    assert job_indices(11, index=4) == [4]
    with pytest.raises(ValueError, match="index"):
        job_indices(3, index=3)
    with pytest.raises(ValueError, match="shard"):
        job_indices(3, shard=3, shards=3)


def test_two_workers_and_one_writer_grade_the_class(course, course_root, tmp_path):
    make_class(tmp_path / "in", course_root)
    summary = grade(course, "toy", tmp_path / "in", tmp_path / "work", workers=2, limits=LIMITS)
    assert summary["graded"] == 5 and not summary["quarantined"] and not summary["grader_errors"]
    scores = gradebook_scores(course, "toy")
    assert {s: v["score"] for s, v in scores.items()} == EXPECTED
    # the written answer: untouched -> 0 automatically; answered -> waits for a human
    assert scores["ben"]["grades"]["why_l1"] == 0.0 and scores["ann"]["grades"]["why_l1"] is None
    assert scores["ann"]["needs_manual"] and not scores["ben"]["needs_manual"]
    for student in EXPECTED:
        assert (course_root / "autograded" / student / "toy" / "toy.ipynb").is_file()
    # merging the same results again changes nothing (idempotent writer)
    merge(course, tmp_path / "work")
    assert gradebook_scores(course, "toy") == scores


def test_shards_run_as_separate_processes_and_merge_to_the_same_grades(course, course_root, tmp_path):
    make_class(tmp_path / "in", course_root)
    work = tmp_path / "work"
    manifest = prepare(course, "toy", tmp_path / "in", work, limits=LIMITS)
    n = len(manifest["jobs"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "reggrader"]
    # two shards at once (like two nodes), each with its own sandbox uid range
    shards = [subprocess.Popen(cmd + ["run", "--work", str(work), "--shard", str(s), "--shards", "3",
                                      "--slot-offset", str(10 * s)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for s in range(2)]
    # the third shard as array tasks: one process per index, index from the engine's variable
    singles = []
    for k, i in enumerate(job_indices(n, shard=2, shards=3)):
        var = "JOB_COMPLETION_INDEX" if k % 2 == 0 else "SLURM_ARRAY_TASK_ID"
        singles.append(subprocess.run(cmd + ["run-job", "--work", str(work), "--slot", "20"],
                                      env=dict(env, **{var: str(i)}), capture_output=True, text=True))
    outs = [p.communicate(timeout=600)[0] for p in shards]
    assert all(p.returncode == 0 for p in shards), outs
    assert all(s.returncode == 0 and json.loads(s.stdout)["status"] == "graded" for s in singles), singles
    # an array rounded up past the last job is a no-op
    extra = subprocess.run(cmd + ["run-job", "--work", str(work)], env=dict(env, JOB_COMPLETION_INDEX=str(n)),
                           capture_output=True, text=True)
    assert extra.returncode == 0 and "no such job" in extra.stdout
    assert sorted(p.name for p in (work / "results").glob("*.json")) == [f"{i:05d}.json" for i in range(n)]
    merged = subprocess.run(cmd + ["--course", str(course_root), "merge", "--work", str(work)],
                            capture_output=True, text=True, env=env)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "graded: 5" in merged.stdout
    assert {s: v["score"] for s, v in gradebook_scores(course, "toy").items()} == EXPECTED


def test_a_missing_result_is_reported_not_invented(course, course_root, tmp_path):
    make_class(tmp_path / "in", course_root)
    work = tmp_path / "work"
    prepare(course, "toy", tmp_path / "in", work, limits=LIMITS)
    from reggrader.job import run_job

    run_job(work, 0)
    summary = merge(course, work)
    assert [m["index"] for m in summary["merged"]] == [0] and summary["missing"] == [1, 2, 3, 4]
    assert list(gradebook_scores(course, "toy")) == [summary["merged"][0]["student"]]


def test_late_submissions_get_nbgrader_late_penalty(course, course_root, tmp_path):
    """The due date lives in the gradebook, the rule in the config (nbgrader's plugin)."""
    from nbgrader.api import Gradebook

    folder = tmp_path / "in"
    submit(folder, "ann", solution_nb(course_root))
    submit(folder, "zed", solution_nb(course_root))
    (folder / "ann" / "toy" / "timestamp.txt").write_text("2024-03-01 09:00:00.000000 UTC")
    (folder / "zed" / "toy" / "timestamp.txt").write_text("2024-03-02 09:00:00.000000 UTC")
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_assignment("toy", duedate="2024-03-01 12:00:00.000000 UTC")
    course.config.LateSubmissionPlugin.penalty_method = "zero"
    grade(course, "toy", folder, tmp_path / "work", limits=LIMITS)
    with Gradebook(course.db_url) as gb:
        ann, zed = gb.find_submission("toy", "ann"), gb.find_submission("toy", "zed")
        assert ann.total_seconds_late == 0 and ann.late_submission_penalty == 0 and ann.score == 7.0
        assert zed.total_seconds_late == 21 * 3600 and zed.late_submission_penalty == 7.0
