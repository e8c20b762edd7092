# nbgrader settings for a STUDENT: which course, and where its exchange is. Nothing else: no paths
# into the course, no gradebook.
#
# This file is copied as `nbgrader_config.py` into the root of the student edition and into each
# student's home or working folder (the folder JupyterLab starts in), where nbgrader and
# JupyterLab's Assignments tab read it. Fetch, Submit and Fetch Feedback then use the course's
# exchange. The environment variables override the defaults exactly as in the instructor's
# autograder/nbgrader_config.py, so the two always agree.
import os

c = get_config()  # noqa: F821  (provided by traitlets when it runs this file)

c.CourseDirectory.course_id = os.environ.get("SEQCOURSE_COURSE_ID", "seqcourse")
c.Exchange.root = os.environ.get("SEQCOURSE_EXCHANGE", "/srv/nbgrader/exchange")
# On a hub whose servers all run as one account (hub/jupyterhub_config.py, SEQCOURSE_HUB_SPAWNER=
# shared), the hub names the student; with one Unix account per student nbgrader uses the account.
if os.environ.get("SEQCOURSE_STUDENT_ID"):
    c.CourseDirectory.student_id = os.environ["SEQCOURSE_STUDENT_ID"]
