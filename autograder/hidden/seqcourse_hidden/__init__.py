"""Hidden tests, one module per lesson.

The notebooks' ``### BEGIN HIDDEN TESTS`` blocks only call these functions, so a failing hidden
test shows a call and a message in the feedback, not the test's source. Every check verifies
the tamper guard first (through :mod:`seqcourse.checks`) and uses fixed seeds, so grading the
same notebook twice gives the same result.
"""

_VAULT: list = []


def direct_vault():
    """The vault of a process without a grading sandbox (nbval on ``solutions/``, the mistakes
    runner, a notebook opened in the repository): :class:`seqcourse_grader.vault.Vault`, here."""
    if not _VAULT:
        from seqcourse_grader.vault import Vault

        _VAULT.append(Vault())
    return _VAULT[0]
