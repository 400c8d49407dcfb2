"""nbgrader configuration for the course (run nbgrader from the repository root)."""

import os

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
c.CourseDirectory.assignments = {}

# what a student sees in place of a solution
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# per-cell timeout when autograding (seconds)
c.Execute.timeout = 60
