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
c.CourseDirectory.course_id = "seqcourse"
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
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
