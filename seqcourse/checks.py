"""Test helpers that tell a learner what is wrong and where to look.

``check_close(actual, expected)`` does more than ``torch.allclose``: it names the first element
that differs, by how much, how many differ, and tries a few likely causes (a transposed matrix,
a missing activation, a result shifted by one time step, a missing bias...).

Every helper first calls the tamper guard, and uses references captured at import time, so a
student cell that replaces ``torch.allclose`` cannot make a check pass.

Each helper sets ``__tracebackhide__``, which IPython honours: a failed check's traceback ends in
the test cell (or the learner's function), not in this file.
"""

from __future__ import annotations

import torch

from seqcourse import guard
from seqcourse.i18n import marked, tr

# References captured when this module is first imported (in the locked setup cell).
_is_tensor = torch.is_tensor
_as_tensor = torch.as_tensor
_isfinite = torch.isfinite
_isnan = torch.isnan
_tanh = torch.tanh
_sigmoid = torch.sigmoid
_abs = torch.abs
_T_sub = torch.Tensor.__sub__
_T_le = torch.Tensor.__le__
_T_mul = torch.Tensor.__mul__
_T_add = torch.Tensor.__add__
_T_all = torch.Tensor.all
_T_sum = torch.Tensor.sum
_T_item = torch.Tensor.item
_T_max = torch.Tensor.max
_T_double = torch.Tensor.double
_T_detach = torch.Tensor.detach
_T_cpu = torch.Tensor.cpu
_T_flatten = torch.Tensor.flatten
_T_argmax = torch.Tensor.argmax
_T_transpose = torch.Tensor.transpose
_unravel = torch.unravel_index
_isinstance, _len, _float, _int, _tuple = isinstance, len, float, int, tuple
_verify = guard.verify  # kept so that replacing guard.verify does not switch the checks off


class CheckError(AssertionError):
    """A failed check; the message says what differs and how to look for it."""


def _fail(msg: str, hint: str | None = None) -> None:
    __tracebackhide__ = True
    raise CheckError(msg + ("\n" + tr("Hint: {hint}", hint=tr(hint)) if hint else ""))


def _prepare(x, name: str):
    __tracebackhide__ = True
    if not _is_tensor(x):
        _fail(tr("Wrong type for {name}: expected a torch.Tensor, got {got}.", name=name, got=type(x).__name__),
              "build it with torch operations; return a tensor, not a list or a NumPy array")
    return _T_cpu(_T_double(_T_detach(x)))


def check_type(obj, expected_type, name: str = "value", hint: str | None = None) -> None:
    __tracebackhide__ = True
    _verify()
    if not _isinstance(obj, expected_type):
        want = getattr(expected_type, "__name__", str(expected_type))
        _fail(tr("Wrong type for {name}: expected a {want}, got {got}.", name=name, want=want,
                 got=type(obj).__name__), hint)


def check_true(condition, message: str, hint: str | None = None, **values) -> None:
    """Fail with ``message`` unless ``condition`` is true (a Python bool or a 1-element tensor).
    ``values`` fill the message's ``{fields}`` (a template, so that it can be translated)."""
    __tracebackhide__ = True
    _verify()
    _check_true(condition, message, hint, **values)


def _check_true(condition, message: str, hint: str | None = None, **values) -> None:
    """:func:`check_true` without the tamper guard: for a caller that runs the guard itself, once
    before and once after a batch of checks (the differential hidden tests make hundreds)."""
    __tracebackhide__ = True
    if _is_tensor(condition):
        condition = _T_item(condition)
    if condition is not True and condition is not False:
        condition = bool(condition)
    if not condition:
        _fail(tr(message, **values), hint)


def check_shape(x, expected: tuple, name: str = "output", hint: str | None = None) -> None:
    """Exact shape check; ``None`` in ``expected`` matches any size."""
    __tracebackhide__ = True
    _verify()
    if not _is_tensor(x):
        _fail(tr("Wrong type for {name}: expected a torch.Tensor, got {got}.", name=name, got=type(x).__name__),
              hint)
    got = _tuple(x.shape)
    ok = _len(got) == _len(expected) and all(e is None or e == g for e, g in zip(expected, got, strict=False))
    if not ok:
        extra = ""
        if _len(got) == _len(expected) and sorted(got) == sorted(e for e in expected if e is not None):
            extra = " " + tr("The sizes are right but in another order: a transposed or permuted result?")
        _fail(tr("Wrong shape for {name}: got {got}, expected {expected}.", name=name, got=got,
                 expected=_tuple(expected)) + extra, hint)


NON_FINITE_CAUSES = (
    marked("a log of 0: log(sigmoid(x)) and log(softmax(x)) are log 0 = -inf once x saturates; compute in "
           "log space with F.logsigmoid (= -softplus(-x)) or torch.log_softmax, which stay finite"),
    marked("exp() of large values computed by hand overflows to inf, and inf - inf or inf / inf is NaN: use "
           "torch.softmax, torch.log_softmax or torch.logsumexp, which subtract the maximum first"),
    marked("a division by zero (a norm, a length or a count of 0): make sure the divisor cannot be 0"),
    marked("a softmax over a row whose scores are all -inf (every position masked, or the mask applied "
           "along the wrong axis), or a mask applied by multiplying with -inf"),
)


def check_finite(x, name: str = "output", hint: str | None = None) -> None:
    """Fail when ``x`` holds NaN or infinite values, with the likely causes; ``hint`` is added."""
    __tracebackhide__ = True
    _verify()
    x = _prepare(x, name)
    bad = ~_isfinite(x)
    if _T_item(bad.any()):
        idx = _tuple(int(i) for i in _unravel(_T_argmax(_T_flatten(bad.to(torch.uint8))), x.shape))
        n_nan = _int(_T_item(_T_sum(_isnan(x))))
        n_inf = _int(_T_item(_T_sum(bad))) - n_nan
        causes = "".join(f"\n  - {tr(c)}" for c in NON_FINITE_CAUSES)
        _fail(tr("NaN or infinite values in {name}: {nan} NaN and {inf} infinite of {total}, the first at "
                 "index {index}. Likely causes:", name=name, nan=n_nan, inf=n_inf, total=x.numel(),
                 index=idx) + causes, hint)


def _close(a, b, atol, rtol) -> bool:
    __tracebackhide__ = True
    if a.shape != b.shape:
        return False
    return bool(_T_item(_T_all(_T_le(_abs(_T_sub(a, b)), _T_add(_T_mul(_abs(b), rtol), atol)))))


def _likely_causes(a, b, atol, rtol) -> list[str]:
    """Cheap guesses at common mistakes, tried on the failing pair."""
    __tracebackhide__ = True
    causes = []
    if a.dim() == 2 and a.shape == b.shape[::-1] and _close(a.T, b, atol, rtol):
        causes.append(tr("the result is the expected one transposed: a matrix used as (in, out) where "
                         "(out, in) was meant, or .T missing or extra"))
    if a.dim() == 3:
        for i, j, what in ((0, 1, marked("batch and time: batch_first, or a stack along the wrong axis")),
                           (1, 2, marked("the last two axes: a transposed matrix in a product"))):
            swapped = _T_transpose(a, i, j)
            if swapped.shape == b.shape and _close(swapped, b, atol, rtol):
                causes.append(tr("your result has axes {i} and {j} swapped ({what})", i=i, j=j, what=tr(what)))
    if a.shape == b.shape:
        if _close(_tanh(a), b, atol, rtol):
            causes.append(tr("tanh(your result) matches: is the tanh activation missing?"))
        if _close(a, _tanh(b), atol, rtol):
            causes.append(tr("your result is tanh(expected): is tanh applied twice?"))
        if _close(_sigmoid(a), b, atol, rtol) or _close(a, _sigmoid(b), atol, rtol):
            causes.append(tr("a sigmoid is missing or extra: check which activation you used"))
        if _close(a, -b, atol, rtol):
            causes.append(tr("the sign is flipped"))
        if _float(_T_item(_T_max(_abs(a)))) < 1e-12:
            causes.append(tr("your result is all zeros: did you return an initial value without updating it?"))
        if a.dim() >= 2 and a.shape[1] > 1:
            if _close(a[:, 1:], b[:, :-1], atol, rtol):
                causes.append(tr("each of your values along axis 1 is the expected one of the step "
                                 "before: do you store the state before updating it (off by one "
                                 "in time)?"))
            if _close(a[:, :-1], b[:, 1:], atol, rtol):
                causes.append(tr("your values along axis 1 run one step ahead of the expected ones "
                                 "(off by one in time)"))
            if _close(a.flip(1), b, atol, rtol):
                causes.append(tr("your result is the expected one reversed along axis 1 (time)"))
        ratio = _T_sum(_T_mul(a, b)) / max(_float(_T_item(_T_sum(_T_mul(b, b)))), 1e-30)
        r = _float(_T_item(ratio))
        factor = _clean_factor(r)
        if factor and _close(a, _T_mul(b, r), atol, rtol):
            causes.append(tr("your result is {factor} the expected one: a scale factor, e.g. a sum where a "
                             "mean was asked, or a term counted twice", factor=factor))
    return causes


def _clean_factor(r: float) -> str | None:
    """``r`` as a small whole factor ("2 times", "1/3 of"), else None: a ratio such as 0.8334 is a
    different computation, not a forgotten scale, and is not reported as one."""
    for k in range(2, 9):
        for value, text in ((k, tr("{k} times", k=k)), (1 / k, tr("1/{k} of", k=k)), (-k, tr("-{k} times", k=k)),
                            (-1 / k, tr("-1/{k} of", k=k))):
            if abs(r - value) <= 1e-4 * abs(value):
                return text
    return None


def check_close(actual, expected, name: str = "output", atol: float = 1e-6, rtol: float = 1e-5,
                hint: str | None = None) -> None:
    """Fail unless ``|actual - expected| <= atol + rtol * |expected|`` element-wise.

    The message gives the shape, the first differing element, the largest difference, how many
    elements differ, and likely causes when one fits.
    """
    __tracebackhide__ = True
    _verify()
    _check_close(actual, expected, name, atol, rtol, hint)


def _check_close(actual, expected, name: str = "output", atol: float = 1e-6, rtol: float = 1e-5,
                 hint: str | None = None) -> None:
    """:func:`check_close` without the tamper guard (see :func:`_check_true`)."""
    __tracebackhide__ = True
    a = _prepare(actual, name)
    b = _prepare(_as_tensor(expected) if not _is_tensor(expected) else expected, "expected")
    if _tuple(a.shape) != _tuple(b.shape):
        extra = ""
        if sorted(_tuple(a.shape)) == sorted(_tuple(b.shape)):
            extra = " " + tr("The sizes are right but in another order: a transposed or permuted result?")
        _fail(tr("Wrong shape for {name}: got {got}, expected {expected}.", name=name, got=_tuple(a.shape),
                 expected=_tuple(b.shape)) + extra, hint)
    if a.numel() == 0:
        return
    finite = _isfinite(a)
    if not _T_item(_T_all(finite)) and _T_item(_T_all(_isfinite(b))):
        check_finite(actual, name, hint)
    diff = _abs(_T_sub(a, b))
    tol = _T_add(_T_mul(_abs(b), rtol), atol)
    bad = ~_T_le(diff, tol)
    n_bad = _int(_T_item(_T_sum(bad)))
    if n_bad == 0:
        return
    first = _tuple(int(i) for i in _unravel(_T_argmax(_T_flatten(bad.to(torch.uint8))), a.shape))
    worst = _float(_T_item(_T_max(diff)))
    msg = (tr("Wrong values in {name}: {bad} of {total} elements differ from the expected ones.",
              name=name, bad=n_bad, total=a.numel()) + "\n  "
           + tr("first at index {index}: got {got}, expected {expected}", index=first,
                got=f"{_float(_T_item(a[first])):.6g}", expected=f"{_float(_T_item(b[first])):.6g}") + "\n  "
           + tr("largest |difference| {worst} (tolerance {atol} + {rtol} * |expected|)", worst=f"{worst:.3g}",
                atol=f"{atol:g}", rtol=f"{rtol:g}"))
    causes = _likely_causes(a, b, atol, rtol)
    if causes:
        msg += "\n  " + tr("likely cause:") + " " + "; ".join(causes)
    _fail(msg, hint)


CLAIM = "application/vnd.seqcourse.claim+json"   # how a graded run's claim is shown, for `course check`


def check_bar(value: float, bar: float, what: str, *, graded: str, exercise: str, below: bool = False,
              hint: str | None = None, **values) -> None:
    """A graded run's claim: ``value`` reaches ``bar`` (``below=True``: stays at or under it).

    ``graded`` names the graded cell that grades the run when the work is submitted, and
    ``exercise`` the exercise its points are charged to. The claim is shown as a line (and, for
    ``course check``, as data it reads back), then fails like the other checks when it does not hold.
    ``values`` fill the ``{fields}`` of ``what`` (a template, so that it can be translated).
    """
    __tracebackhide__ = True
    _verify()
    value, bar = _float(value), _float(bar)
    what = tr(what, **values)
    passed = value <= bar if below else value >= bar
    sign = "<=" if below else ">="
    verdict = tr("reached") if passed else tr("missed by {gap}", gap=f"{abs(value - bar):.4g}")
    line = tr("{what}: {value} (bar {sign} {bar}) {verdict}; graded in {graded}, charged to {exercise}",
              what=what, value=f"{value:.4g}", sign=sign, bar=f"{bar:.4g}", verdict=verdict, graded=graded,
              exercise=tr(exercise))
    record = {"graded": graded, "exercise": exercise, "what": what, "value": value, "bar": bar,
              "below": below, "passed": passed}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display({CLAIM: record, "text/plain": line}, raw=True)
    else:
        print(line)
    if not passed:
        template = ("{what} is {value}: above this profile's bar of {bar}" if below else
                    "{what} is {value}: below this profile's bar of {bar}")
        _fail(tr(template, what=what, value=f"{value:.4g}", bar=f"{bar:.4g}"), hint)
