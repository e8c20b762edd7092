"""seqcourse: the support library of the course.

Plumbing only: device and profile, seeding, data, text, a training loop, plots and test helpers.
The exercises' answers never live here.
"""

__version__ = "0.1.0"
__all__ = ["Profile", "get_profile", "pick_device", "seed_everything", "__version__"]


def __getattr__(name: str):
    # Loaded on first use: the grading processes (seqcourse_grader) import this package and never need torch.
    if name in __all__:
        from seqcourse import env

        return getattr(env, name)
    raise AttributeError(f"module 'seqcourse' has no attribute {name!r}")
