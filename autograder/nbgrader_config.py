# The course's nbgrader settings. Loaded by ../nbgrader_config.py and by the `course` command.
import os
import sys

c = get_config()  # noqa: F821

# nbgrader runs helper programs (`alembic`, to create and upgrade the gradebook) by name, from PATH.
# `.venv/bin/jupyter lab` or `.venv/bin/course` without an activated venv would not find them:
# put the running Python's own bin folder first, for nbgrader and for the kernels it starts.
_BIN = os.path.dirname(sys.executable)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Layout: instructor edition in solutions/, student edition in lessons/; everything produced while
# grading lives under autograder/ and is git-ignored.
c.CourseDirectory.root = ROOT
# The course id names the course in nbgrader's exchange; SEQCOURSE_COURSE_ID overrides it (one
# exchange serving two runs of the course). Students use the same id: student_nbgrader_config.py.
c.CourseDirectory.course_id = os.environ.get("SEQCOURSE_COURSE_ID", "seqcourse")
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
c.CourseDirectory.source_with_tests_directory = "autograder/source_with_tests"
c.CourseDirectory.submitted_directory = "autograder/submitted"
c.CourseDirectory.autograded_directory = "autograder/autograded"
c.CourseDirectory.feedback_directory = "autograder/feedback"
c.CourseDirectory.solution_directory = "autograder/released_solutions"
# Only the notebooks and the data they need travel with an assignment.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]
# SEQCOURSE_GRADEBOOK overrides (e.g. postgresql://user@host/db for a hub with several graders).
c.CourseDirectory.db_url = os.environ.get(
    "SEQCOURSE_GRADEBOOK", "sqlite:///" + os.path.join(HERE, "gradebook.db"))

# nbgrader's exchange: the folder through which `nbgrader release_assignment`, the students'
# fetch/submit (JupyterLab's Assignments tab), `nbgrader collect` and the feedback pass. The
# default folder must exist and be writable by every student (see README.md, "Students submit
# through nbgrader's exchange", for the permissions); SEQCOURSE_EXCHANGE names another.
# student_nbgrader_config.py sets the same folder for the students.
c.Exchange.root = os.environ.get("SEQCOURSE_EXCHANGE", "/srv/nbgrader/exchange")
# release_assignment refuses a lesson whose given code shows the answers of a lesson whose deadline
# (autograder/schedule.toml) has not passed; SEQCOURSE_REVEAL_EARLY=1 releases it anyway.
c.ExchangeFactory.release_assignment = "seqcourse_grader.schedule.ReleaseOnSchedule"

# Stubs that students see in lessons/.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# A student who deletes a test cell does not escape it: nbgrader puts it back.
c.OverwriteCells.add_missing_cells = True

# Execution while autograding. Training cells use the ci budget (NBGRADER_EXECUTION is set),
# which takes well under a minute; a cell that runs past the timeout is interrupted and the
# rest of the notebook still runs.
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True
c.Execute.kernel_name = "python3"
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]

# Any stderr output in a test cell costs its points. Progress bars (tqdm) and warnings (e.g. torch's
# "Converting a tensor with requires_grad=True to a scalar" for a correct `float(loss)`) are not
# failures, so drop them while grading; errors still arrive as error outputs and still count.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\d+%\||\w*Warning: "

# Feedback must not reveal the hidden tests' source.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "seqcourse_grader.feedback.ClearInstructorHiddenTests",  # markers only in locked cells
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
