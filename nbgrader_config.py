"""nbgrader configuration for the course (run nbgrader from the repository root).

The release (``make exercises`` = ``python tools/release.py``) copies this file into a
throw-away course directory, so every path below is relative to this file's directory.
"""

import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_output
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "regularization-in-deep-learning"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# instructor sources (solutions + hidden tests) and the student versions made from them
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# the gradebook stays out of git (see .gitignore); override with NBGRADER_DB_URL,
# e.g. postgresql://... when several graders share one database
c.CourseDirectory.db_url = os.environ.get(
    "NBGRADER_DB_URL", "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")
)
# solutions/<name>/grading.py (record-and-compare hidden tests: cases and reference calls)
# must never be copied into a release: nbgrader's default ignore list plus that file
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "grading.py"]

# what a student sees in place of a solution
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# per-cell timeout when autograding (seconds)
c.Execute.timeout = 60


class ClearHiddenTestsAndErrors(ClearHiddenTests):
    """Feedback without the hidden tests: their source and what their failures printed.

    Stock ``generate_feedback`` renders the autograded notebook, whose test cells hold the
    hidden tests again (autograde restores them from the gradebook), so their code and the
    traceback of a failing hidden test (which quotes that code) end up in the student's
    HTML. This removes each hidden region (as ``generate_assignment`` does) and replaces
    the outputs of every cell that had one by a single line naming the failure: the
    exception's type and the message of its last line (the assertion messages of hidden
    tests name the function and the input's shape, never a reference value).
    """

    def preprocess_cell(self, cell, resources, cell_index):
        had_hidden_tests = self._remove_hidden_test_region(cell)
        if had_hidden_tests and cell.cell_type == "code":
            errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
            cell.outputs = []
            if errors:
                message = str(errors[0].get("evalue", "")).strip().splitlines()
                summary = f"{errors[0].get('ename', 'Error')}: {message[-1][:200] if message else ''}"
                cell.outputs = [new_output(
                    "stream", name="stdout", text=f"A hidden test failed ({summary}). The hidden tests are not shown.\n"
                )]
        return super().preprocess_cell(cell, resources, cell_index)


# feedback: the stock list (GetGrades, CSSHTMLHeaderPreprocessor) with the hidden tests removed
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTestsAndErrors, CSSHTMLHeaderPreprocessor]
