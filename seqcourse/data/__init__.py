"""Datasets the lessons use. Each module documents provenance; datasets/README.md has licences."""

from seqcourse.data.surnames import SurnameSplit, load_surnames

__all__ = ["SurnameSplit", "load_surnames"]
