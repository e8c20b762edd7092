# nbgrader and JupyterLab's formgrader read nbgrader_config.py from the working directory.
# This file only forwards to the course's settings in autograder/, so the usual commands
# (`nbgrader generate_assignment 01-rnn-cell`, `nbgrader autograde 01-rnn-cell`, ...) work from here.
import os

c = get_config()  # noqa: F821  (provided by traitlets when it runs this file)
load_subconfig(os.path.join(os.path.dirname(os.path.abspath(__file__)),  # noqa: F821
                            "autograder", "nbgrader_config.py"))
