"""Grading support: the tamper guard, the static scan of student code, and hidden-test helpers."""
