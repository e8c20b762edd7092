"""Where the course runs: the ``ci|cpu|gpu`` profile, the device, and seeds.

One switch, the environment variable ``SEQCOURSE_PROFILE``, sets data sizes, epochs and model sizes
for every lesson. While nbgrader autogrades (``NBGRADER_EXECUTION`` is set) the ``ci`` budget is
always used, so a class is graded in seconds per student whatever the grader's shell says.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

PROFILE_NAMES = ("ci", "cpu", "gpu")

# Per-lesson budgets. Keys are assignment ids; every profile must define the same keys
# (tests/test_env.py checks), so a notebook never meets a missing setting.
_BUDGETS: dict[str, dict[str, dict[str, Any]]] = {
    "ci": {
        "01-rnn-cell": dict(
            max_per_language=120, emb_size=32, hid_size=64, epochs=6, batch_size=32, lr=3e-3,
            min_test_accuracy=0.40,
        ),
        "02-bptt": dict(
            lags=(1, 4, 16, 32), delay_steps=300, num_symbols=8, hidden=64,
            short_lag_min_acc=0.9, long_lag_margin=0.05,
            adding_lengths=(10, 100), adding_steps=300, adding_fail_fraction=0.85,
            adding_learn_fraction=None, clip_steps=200,
        ),
        "03-lstm": dict(
            adding_T=50, adding_steps=600, hidden=32, lr=1e-2, lstm_max_fraction=0.2,
            rnn_fail_fraction=0.85, gate_T=30,
        ),
        "04-deep-rnn": dict(
            max_per_language=120, emb_size=32, hid_size=64, epochs=8, batch_size=32, lr=5e-3,
            dropout=0.2, margin=0.02,
            gen_emb=32, gen_lang=16, gen_hidden=128, gen_epochs=6, gen_lr=5e-3,
            temperatures=(0.1, 0.3, 0.6, 1.0, 1.5, 2.0), samples_per_language=12,
            speed_batch=32, speed_T=20, speed_size=64, speed_repeats=3,
        ),
        "05-seq2seq": dict(
            days=2000, per_day=2, emb_size=32, hidden=64, epochs=4, batch_size=32, lr=6e-3,
            min_exact_match=0.5, beam_size=3, max_len=12, beam_examples=40,
            copy_lengths=(2, 8), copy_train=2000, copy_test=40, copy_hidden=32, copy_epochs=2, copy_seeds=(0,),
        ),
        "06-attention": dict(
            days=2000, per_day=2, emb_size=32, hidden=64, epochs=3, batch_size=64, lr=2e-2, kind="additive",
            min_exact_match=0.9, max_len=12, heatmaps=3,
            tat_source="tutorial", tat_pairs=1500, tat_emb=32, tat_hidden=64, tat_epochs=2, tat_batch=64,
            tat_lr=3e-3, tat_max_len=12,
        ),
        "07-modern-rnn": dict(
            speed_lengths=(16, 64, 256), speed_batch=8, speed_hidden=16, speed_repeats=2,
            exp_lengths=(12, 24), exp_steps=300, exp_batch=32, exp_hidden=16, exp_lr=1e-2, max_hidden=1024,
            max_fraction=0.2, solved_fraction=0.1, param_tolerance=0.1,
        ),
    },
    "cpu": {
        "01-rnn-cell": dict(
            max_per_language=300, emb_size=32, hid_size=128, epochs=12, batch_size=32, lr=2e-3,
            min_test_accuracy=0.55,
        ),
        "02-bptt": dict(
            lags=(1, 2, 4, 8, 12, 16, 24, 32), delay_steps=1000, num_symbols=8, hidden=64,
            short_lag_min_acc=0.95, long_lag_margin=0.05,
            adding_lengths=(10, 25, 50, 100), adding_steps=1500, adding_fail_fraction=0.85,
            adding_learn_fraction=0.5, clip_steps=300,
        ),
        "03-lstm": dict(
            adding_T=100, adding_steps=2000, hidden=32, lr=1e-2, lstm_max_fraction=0.1,
            rnn_fail_fraction=0.85, gate_T=40,
        ),
        "04-deep-rnn": dict(
            max_per_language=300, emb_size=64, hid_size=128, epochs=12, batch_size=32, lr=3e-3,
            dropout=0.3, margin=0.03,
            gen_emb=32, gen_lang=16, gen_hidden=256, gen_epochs=8, gen_lr=3e-3,
            temperatures=(0.1, 0.3, 0.5, 0.8, 1.0, 1.3, 1.6, 2.0), samples_per_language=40,
            speed_batch=64, speed_T=30, speed_size=128, speed_repeats=5,
        ),
        "05-seq2seq": dict(
            days=4000, per_day=3, emb_size=32, hidden=128, epochs=8, batch_size=64, lr=3e-3,
            min_exact_match=0.95, beam_size=3, max_len=12, beam_examples=200,
            copy_lengths=(2, 10), copy_train=6000, copy_test=100, copy_hidden=32, copy_epochs=6,
            copy_seeds=(0, 1, 2),
        ),
        "06-attention": dict(
            days=4000, per_day=3, emb_size=32, hidden=128, epochs=8, batch_size=64, lr=3e-3, kind="additive",
            min_exact_match=0.995, max_len=12, heatmaps=3,
            tat_source="tutorial", tat_pairs=None, tat_emb=64, tat_hidden=128, tat_epochs=6, tat_batch=128,
            tat_lr=3e-3, tat_max_len=12,
        ),
        "07-modern-rnn": dict(
            speed_lengths=(16, 64, 256, 1024), speed_batch=32, speed_hidden=64, speed_repeats=3,
            exp_lengths=(25, 50, 100), exp_steps=1000, exp_batch=64, exp_hidden=16, exp_lr=1e-2, max_hidden=1024,
            max_fraction=0.1, solved_fraction=0.1, param_tolerance=0.1,
        ),
    },
    "gpu": {
        "01-rnn-cell": dict(
            max_per_language=300, emb_size=64, hid_size=256, epochs=15, batch_size=64, lr=1e-3,
            min_test_accuracy=0.55,
        ),
        "02-bptt": dict(
            lags=(1, 2, 4, 8, 12, 16, 24, 32, 48), delay_steps=2000, num_symbols=8, hidden=64,
            short_lag_min_acc=0.95, long_lag_margin=0.05,
            adding_lengths=(10, 25, 50, 100), adding_steps=3000, adding_fail_fraction=0.85,
            adding_learn_fraction=0.5, clip_steps=300,
        ),
        "03-lstm": dict(
            adding_T=100, adding_steps=3000, hidden=64, lr=1e-2, lstm_max_fraction=0.1,
            rnn_fail_fraction=0.85, gate_T=40,
        ),
        "04-deep-rnn": dict(
            max_per_language=300, emb_size=64, hid_size=256, epochs=15, batch_size=64, lr=2e-3,
            dropout=0.3, margin=0.03,
            gen_emb=64, gen_lang=16, gen_hidden=512, gen_epochs=20, gen_lr=2e-3,
            temperatures=(0.1, 0.3, 0.5, 0.8, 1.0, 1.3, 1.6, 2.0), samples_per_language=100,
            speed_batch=256, speed_T=50, speed_size=512, speed_repeats=10,
        ),
        "05-seq2seq": dict(
            days=8000, per_day=4, emb_size=64, hidden=256, epochs=12, batch_size=128, lr=2e-3,
            min_exact_match=0.98, beam_size=5, max_len=12, beam_examples=500,
            copy_lengths=(2, 10), copy_train=6000, copy_test=100, copy_hidden=32, copy_epochs=6,
            copy_seeds=(0, 1, 2),
        ),
        "06-attention": dict(
            days=8000, per_day=4, emb_size=64, hidden=256, epochs=12, batch_size=128, lr=2e-3, kind="additive",
            min_exact_match=0.998, max_len=12, heatmaps=3,
            tat_source="short", tat_pairs=None, tat_emb=256, tat_hidden=512, tat_epochs=15, tat_batch=256,
            tat_lr=1e-3, tat_max_len=12,
        ),
        "07-modern-rnn": dict(
            speed_lengths=(16, 64, 256, 1024, 4096), speed_batch=64, speed_hidden=256, speed_repeats=5,
            exp_lengths=(25, 50, 100, 200), exp_steps=2000, exp_batch=64, exp_hidden=32, exp_lr=1e-2, max_hidden=4096,
            max_fraction=0.1, solved_fraction=0.1, param_tolerance=0.1,
        ),
    },
}


@dataclass(frozen=True)
class Profile:
    """A named budget. ``profile.budget("01-rnn-cell").epochs`` reads one lesson's setting."""

    name: str
    reason: str
    _budgets: MappingProxyType = field(repr=False, compare=False,
                                       default_factory=lambda: MappingProxyType({}))

    def budget(self, lesson: str) -> _Budget:
        try:
            return _Budget(lesson, self.name, self._budgets[lesson])
        except KeyError:
            known = ", ".join(sorted(self._budgets))
            raise KeyError(f"profile {self.name!r} has no budget for lesson {lesson!r}; "
                           f"known lessons: {known}") from None


# The settings _Budget.shrunk cuts, by the end of their names: counts of epochs, steps, timing
# repeats and samples drawn from a trained model (the mistakes runner treats what a cell makes
# from any of them as untrusted).
SHRUNK_SUFFIXES = ("epochs", "steps", "repeats", "samples_per_language")


def shrinkable_keys(values: dict[str, Any]) -> set[str]:
    """The settings :meth:`_Budget.shrunk` cuts (``SHRUNK_SUFFIXES``)."""
    return {k for k, v in values.items() if isinstance(v, int) and not isinstance(v, bool)
            and k.endswith(SHRUNK_SUFFIXES)}


class _Budget:
    """Read-only attribute access to one lesson's settings, with a helpful error on typos."""

    def __init__(self, lesson: str, profile: str, values: dict[str, Any]):
        object.__setattr__(self, "_lesson", lesson)
        object.__setattr__(self, "_profile", profile)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, key: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if key in values:
            return values[key]
        raise AttributeError(f"lesson {self._lesson!r} has no setting {key!r} "
                             f"(it has: {', '.join(sorted(values))})")

    def __setattr__(self, key, value):
        raise AttributeError("budgets are read-only; set SEQCOURSE_PROFILE to choose another one")

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def shrunk(self) -> _Budget:
        """A quick copy for following a wrong answer through a notebook (the mistakes runner):
        one epoch, a tenth of the steps, one timing repeat, one sample per language. Its results
        mean nothing; only whether later cells run and which graded cells fail."""
        values = {k: (max(1, v // 10) if k.endswith("steps") else 1)
                  if k in shrinkable_keys(self._values) else v for k, v in self._values.items()}
        return _Budget(self._lesson, f"{self._profile}, shrunk", values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Budget[{self._lesson} @ {self._profile}]({inner})"


def profile_name() -> tuple[str, str]:
    """Return ``(name, reason)`` for the profile in force."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return "ci", "autograding (NBGRADER_EXECUTION is set) always uses the ci budget"
    raw = os.environ.get("SEQCOURSE_PROFILE", "").strip().lower()
    if raw:
        if raw not in PROFILE_NAMES:
            raise ValueError(f"SEQCOURSE_PROFILE={raw!r} is not a profile; "
                             f"choose one of {', '.join(PROFILE_NAMES)}")
        return raw, "set by SEQCOURSE_PROFILE"
    if torch.cuda.is_available():
        return "gpu", "default: a CUDA GPU is available"
    return "cpu", "default: no CUDA GPU"


SHRUNK_RUNS = "SEQCOURSE_SHRUNK_RUNS"


def get_profile(verbose: bool = False) -> Profile:
    name, reason = profile_name()
    budgets = _BUDGETS[name]
    if os.environ.get("NBGRADER_EXECUTION") and os.environ.get(SHRUNK_RUNS) == "1":
        # A grading dry run (the grader's own tests of what submissions can reach): every training
        # run on the shrunk budget. Only the grader sets it, in the kernel's environment; a run
        # that shrinks can only miss its bar, never earn a point.
        budgets = {lesson: _Budget(lesson, name, values).shrunk().as_dict() for lesson, values in budgets.items()}
        reason += "; a dry run: every training run shrunk"
    profile = Profile(name, reason, MappingProxyType(budgets))
    if verbose:
        print(f"profile: {name} ({reason})")
    return profile


def pick_device(verbose: bool = True) -> torch.device:
    """CUDA if present, then Apple's MPS, then the CPU. Prints the choice unless told not to."""
    if torch.cuda.is_available():
        device = torch.device("cuda")
        label = f"cuda ({torch.cuda.get_device_name(0)})"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device, label = torch.device("mps"), "mps (Apple GPU)"
    else:
        device, label = torch.device("cpu"), "cpu"
    if verbose:
        print(f"device: {label}")
    return device


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a torch Generator seeded the same way.

    The returned generator is handy for data shuffling that must not depend on how many random
    numbers the model consumed.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
