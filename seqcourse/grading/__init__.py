"""Grading support: the tamper guard, the static scan of student code, and hidden-test helpers."""

import sys

# jsonschema (under nbformat) builds an Earley parser for its optional "iri" format check when it
# is imported, about 0.9 s in every process; notebooks' schemas never use "iri", and grading starts
# several processes per class (workers, helpers, zygotes). Without the module the check is skipped.
sys.modules.setdefault("rfc3987_syntax", None)
