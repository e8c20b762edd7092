"""The grader: everything an instructor runs and a student never gets.

The grading engine (collect, precheck, submission, kernels, scheduler, gradebook, reports,
feedback), the sandbox and the isolation vault that hold reference answers away from a
submission, the static scan, the mistakes runner, releases and the student edition, and the
full course's ``course`` command. It imports the student's package (:mod:`seqcourse`), never the
reverse, and it is not part of the student edition.
"""

import sys


def quick_nbformat() -> None:
    """Called first by the grader's own processes (the CLI, pool workers, Dask helpers), never at
    import: jsonschema (under nbformat) builds an Earley parser for its optional "iri" format check
    when it is imported, about 0.9 s a process, and notebooks' schemas never use "iri". Without the
    module the check is skipped."""
    sys.modules.setdefault("rfc3987_syntax", None)
