"""reggrader: the course's grading machinery around nbgrader (the instructor's package).

Students import ``reglib``; instructors grade with ``reggrader``. It keeps nbgrader for
release, gradebook, feedback, export and formgrader, and replaces the autograding step:

* **intake** (:mod:`reggrader.intake`, :mod:`reggrader.plan`): map a class's files to
  students, normalize browser/LMS names, check and repair notebooks against the release,
  quarantine what cannot be graded safely;
* **sandboxed execution** (:mod:`reggrader.sandbox`, :mod:`reggrader.execute`): timeouts,
  memory and output limits, an unprivileged user that cannot read ``solutions/`` or the
  gradebook, no network;
* **record-and-compare** (:mod:`reggrader.spec`, :mod:`reggrader.compare`): hidden tests
  only record the student's outputs on the grader's inputs; the grader compares them with
  the reference in its own process;
* **jobs, workers, shards and one trusted writer** (:mod:`reggrader.job`,
  :mod:`reggrader.batch`, :mod:`reggrader.gradebook`), feedback and export
  (:mod:`reggrader.feedback`). The command line is ``reggrader`` (:mod:`reggrader.cli`).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
