"""Hidden tests, one module per lesson.

The notebooks' ``### BEGIN HIDDEN TESTS`` blocks only call these functions, so a failing hidden
test shows a call and a message in the feedback, not the test's source. Every check verifies
the tamper guard first (through :mod:`seqcourse.checks`) and uses fixed seeds, so grading the
same notebook twice gives the same result.
"""
