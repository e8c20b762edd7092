"""Hidden tests of lesson 03, "LSTM gates (and GRU)".

Which test covers each class of mistake; every case below is stated in the exercise's *Graded on*
paragraph, and its visible tests try a small instance of each class. No GPU is used in grading: the
dtype tests stand for the device too, as they catch a tensor made without the input's dtype and
device (``torch.zeros(B, H)``).

| exercise | dtype | input | edge | extreme | side-effect |
|---|---|---|---|---|---|
| `LSTMCellScratch` | test_lstm_cell: a float64 cell keeps h and c float64 (given state and state=None); a float32 cell gives float32 | test_lstm_cell: state=None (zeros) and a given (h, c), as a tuple and as a list; a new cell initialised uniformly in +-1/sqrt(H), as nn.LSTMCell | test_lstm_cell: B = 1, E = H, E != H, H = 1 | test_lstm_cell: pre-activations near 1e3 (saturated gates), and zero input and state | test_lstm_cell: x, h and c unchanged by the call; gradcheck through x, h and c; every parameter gets a gradient |
| `lstm_forward` | test_lstm_forward: float64 in, float64 outputs and final state; float32 too | test_lstm_forward: state=None and a given (h, c) | test_lstm_forward: T = 1, B = 1, odd T (3, 5, 7) | n/a: the loop adds no arithmetic of its own; saturation is exercise 1's | test_lstm_forward: x, h and c unchanged; gradcheck through x, h and c over 4 steps |
| `lstm_variants` | test_variants: float64 in, float64 out for both cells; float32 too | test_variants: the state as a tuple and as a list | test_variants: B = 1, E = H, E != H, H = 1 | test_variants: a cell state near 1e4 (tanh and the peephole gates saturate) | test_variants: state, weights and peep unchanged; gradcheck through x, c and peep |
| `gru_cell` | test_gru_cell: float64 in, float64 out; float32 too | n/a: every argument is required and a tensor; there is no default state | test_gru_cell: B = 1, E = H, E != H, H = 1 | test_gru_cell: pre-activations near 1e3, and an update gate of exactly 1 (the state is copied) | test_gru_cell: x, h and the weights unchanged; gradcheck through x, h and the weights |
| `init_forget_bias` | test_init_forget_bias: a float64 LSTM keeps float64 biases | test_init_forget_bias: an int value as well as floats | test_init_forget_bias: 1, 2 and 3 layers, both directions of a bidirectional LSTM, H = 1 | n/a: the value is stored, not computed with | test_init_forget_bias: weights and the other rows unchanged; the same Parameter objects, still leaves that require grad |

The experiment's graded cell (``test_lstm_solves_adding``) reads the notebook's own trained LSTM and
charges a shortfall to ``init_forget_bias``, the only exercise that run uses.
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st
from torch import nn

from seqcourse import guard
from seqcourse.checks import CheckError, check_close, check_shape, check_true
from seqcourse_hidden._differential import (
    DTYPES,
    SCALES,
    TOLERANCE,
    Case,
    differential,
    gen,
    module_call,
    pick,
    randn,
    seeds,
    with_grad,
)
from seqcourse_hidden._isolate import Exercises, judge_experiment

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("03-lstm")

# (B, E, H): E != H catches transposes, E == H swapped matrices, B = 1 and H = 1 the edge cases.
SHAPES = [(3, 4, 5), (1, 2, 3), (4, 6, 6), (2, 3, 1)]
TOL = TOLERANCE[torch.float64]   # the tolerance every lesson states
TOL32 = dict(atol=1e-5, rtol=1e-4)
DTYPE_HINT = ("make new tensors with x.new_zeros(...) or torch.zeros(..., dtype=x.dtype, device=x.device): "
              "torch.zeros(B, H) is float32 on the CPU whatever the input")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, g, dtype=torch.float64, scale=1.0):
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


def _randomise(module: nn.Module, g: torch.Generator, scale: float = 0.5) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def _call(fn, what: str, *args):
    """``fn(*args)``, with a dtype clash turned into a message that says so."""
    try:
        return fn(*args)
    except RuntimeError as exc:
        text = str(exc)
        if any(word in text for word in ("dtype", "Double", "Float", "scalar type")):
            dtype = next((a.dtype for a in args if torch.is_tensor(a)), "these")
            raise CheckError(f"{what} failed with {dtype} inputs: {text.splitlines()[0]}\n"
                             f"Hint: {DTYPE_HINT}") from None
        raise


def _dtype(t, want: torch.dtype, name: str) -> None:
    check_true(t.dtype == want, f"{name} is {t.dtype}, but the inputs were {want}", hint=DTYPE_HINT)


def _unchanged(before: dict, after: dict, call: str) -> None:
    for name, old in before.items():
        check_true(torch.equal(after[name], old), f"{call} changed its argument {name} in place",
                   hint="compute new tensors (c = f * c + ...); in-place operations such as c.mul_(...), "
                        "c += ... or h[...] = ... change the caller's tensors")


def _gradcheck(fn, inputs, what: str) -> None:
    try:
        ok = torch.autograd.gradcheck(fn, inputs, raise_exception=False)
    except RuntimeError as exc:   # e.g. an in-place operation on a tensor autograd needs
        raise CheckError(f"backward through {what} failed: {str(exc).splitlines()[0]}\n"
                         "Hint: avoid in-place operations on the state; do not detach it") from None
    check_true(ok, f"gradients through {what} disagree with finite differences",
               hint="keep every step in the autograd graph: no .detach(), .item(), torch.no_grad() or "
                    "in-place edits")


# ---------------------------------------------------------------- exercise 1: the LSTM cell
def test_lstm_cell(LSTMCellScratch) -> None:
    # a new cell is initialised as nn.LSTMCell is: uniform in +-1/sqrt(H), not left as torch.empty made it
    for E, H in ((3, 4), (5, 16)):
        torch.manual_seed(3100 + H)
        fresh = _call(LSTMCellScratch, f"LSTMCellScratch({E}, {H})", E, H)
        bound = 1 / math.sqrt(H)
        for name, p in fresh.named_parameters():
            values = p.detach().double()
            check_true(bool(torch.isfinite(values).all()) and float(values.abs().max()) <= bound + 1e-6,
                       f"a new LSTMCellScratch({E}, {H})'s {name} holds values outside +-1/sqrt(H) = +-{bound:.3f}",
                       hint="initialise every parameter with nn.init.uniform_(p, -1 / H ** 0.5, 1 / H ** 0.5): "
                            "torch.empty leaves whatever the memory held")
            check_true(float(values.std()) > bound / 4,
                       f"a new LSTMCellScratch({E}, {H})'s {name} is not spread over +-1/sqrt(H) "
                       f"(standard deviation {float(values.std()):.4f}; a uniform draw gives about {bound / math.sqrt(3):.3f})",
                       hint="initialise every parameter with nn.init.uniform_(p, -1 / H ** 0.5, 1 / H ** 0.5)")
    for k, (B, E, H) in enumerate(SHAPES):
        g = _gen(3000 + k)
        ref = _randomise(nn.LSTMCell(E, H).double(), g)
        cell = LSTMCellScratch(E, H).double()
        names = {n: tuple(p.shape) for n, p in cell.named_parameters()}
        want = {n: tuple(p.shape) for n, p in ref.named_parameters()}
        check_true(names == want, f"the parameters {names} should be exactly nn.LSTMCell's {want}",
                   hint="weight_ih (4H, E), weight_hh (4H, H), bias_ih and bias_hh (4H,), as nn.Parameter")
        cell.load_state_dict(ref.state_dict())
        x, h0, c0 = _randn(B, E, g=g), _randn(B, H, g=g), _randn(B, H, g=g)
        before = {"x": x.clone(), "h": h0.clone(), "c": c0.clone()}
        state = (h0, c0) if k % 2 == 0 else [h0, c0]
        result = _call(cell, "cell(x, (h, c))", x, state)
        check_true(isinstance(result, tuple) and len(result) == 2, "forward should return the pair (h, c)")
        h, c = result
        _unchanged(before, {"x": x, "h": h0, "c": c0}, "cell(x, (h, c))")
        rh, rc = ref(x, (h0, c0))
        label = f"B={B}, E={E}, H={H}, state as a {type(state).__name__}"
        check_shape(h, (B, H), f"h for {label}")
        check_shape(c, (B, H), f"c for {label}")
        _dtype(h, torch.float64, "h")
        _dtype(c, torch.float64, "c")
        check_close(c, rc, f"the cell state c for {label}", **TOL,
                    hint="gate order in PyTorch's weights is input, forget, cell (g), output")
        check_close(h, rh, f"the hidden state h for {label}", **TOL, hint="h = sigmoid(o) * tanh(c_new)")
        zh, zc = _call(cell, "cell(x) with state=None", x)      # no state: zeros, as in nn.LSTMCell
        _dtype(zh, torch.float64, "h with state=None")
        check_close(zc, ref(x)[1], f"c with state=None (zeros) for {label}", **TOL,
                    hint="state=None means h = c = zeros of shape (B, H), in x's dtype")
        check_close(zh, ref(x)[0], f"h with state=None (zeros) for {label}", **TOL)
    # float32, the default: stays float32
    g = _gen(3010)
    ref = _randomise(nn.LSTMCell(3, 4), g)
    cell = LSTMCellScratch(3, 4)
    cell.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, generator=g)
    h, c = cell(x)
    _dtype(h, torch.float32, "h of a float32 cell")
    check_close(h, ref(x)[0], "h of a float32 cell", **TOL32)
    # extremes: saturated gates, and all zeros
    g = _gen(3020)
    ref = _randomise(nn.LSTMCell(4, 5).double(), g, scale=20.0)
    cell = LSTMCellScratch(4, 5).double()
    cell.load_state_dict(ref.state_dict())
    x, h0, c0 = _randn(3, 4, g=g, scale=50.0), _randn(3, 5, g=g), _randn(3, 5, g=g)
    h, c = cell(x, (h0, c0))
    rh, rc = ref(x, (h0, c0))
    check_close(c, rc, "c with saturated gates (pre-activations near 1e3)", **TOL,
                hint="use torch.sigmoid and torch.tanh: a hand-written exp(z) / (1 + exp(z)) or "
                     "(exp(2z) - 1) / (exp(2z) + 1) overflows to inf / inf = NaN")
    check_close(h, rh, "h with saturated gates (pre-activations near 1e3)", **TOL)
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    z_state = (torch.zeros(2, 5, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64))
    check_close(cell(zeros, z_state)[0], ref(zeros, z_state)[0], "h for a zero input and state", **TOL)
    # gradients: through x, h and c, and to every parameter
    g = _gen(3050)
    cell = _randomise(LSTMCellScratch(3, 4).double(), g)
    inputs = tuple(_randn(2, n, g=g).requires_grad_() for n in (3, 4, 4))
    _gradcheck(lambda x, h, c: torch.cat(cell(x, (h, c)), -1), inputs, "your cell")
    cell.zero_grad()
    sum(t.sum() for t in cell(inputs[0].detach(), (inputs[1].detach(), inputs[2].detach()))).backward()
    missing = [n for n, p in cell.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    check_true(not missing, f"no gradient reached {missing}", hint="use all four parameters in forward")
    test_differential("LSTMCellScratch", LSTMCellScratch)


# ---------------------------------------------------------------- exercise 2: over a sequence
def test_lstm_forward(lstm_forward, LSTMCellScratch) -> None:
    for k, (B, E, H) in enumerate(SHAPES):
        T = [5, 1, 3, 7][k]
        g = _gen(3100 + k)
        ref = _randomise(nn.LSTM(E, H, batch_first=True).double(), g)
        cell = LSTMCellScratch(E, H).double()
        cell.load_state_dict({n.removesuffix("_l0"): p for n, p in ref.state_dict().items()})
        x, h0, c0 = _randn(B, T, E, g=g), _randn(B, H, g=g), _randn(B, H, g=g)
        before = {"x": x.clone(), "h": h0.clone(), "c": c0.clone()}
        result = _call(lstm_forward, "lstm_forward(cell, x, (h, c))", cell, x, (h0, c0))
        check_true(isinstance(result, tuple) and len(result) == 2, "lstm_forward returns (outputs, (h, c))")
        outputs, (h, c) = result
        _unchanged(before, {"x": x, "h": h0, "c": c0}, "lstm_forward(cell, x, (h, c))")
        r_out, (rh, rc) = ref(x, (h0[None], c0[None]))
        label = f"B={B}, T={T}, H={H}, given state"
        check_shape(outputs, (B, T, H), f"outputs for {label}", hint="stack the h of every step on axis 1")
        check_shape(h, (B, H), f"the final h for {label}")
        _dtype(outputs, torch.float64, "outputs")
        _dtype(c, torch.float64, "the final c")
        check_close(outputs, r_out, f"the outputs for {label}", **TOL,
                    hint="start from the given state and carry (h, c) from step to step")
        check_close(h, rh[0], f"the final h for {label}", **TOL)
        check_close(c, rc[0], f"the final c for {label}", **TOL, hint="return the cell state after the last step too")
        out0, _ = _call(lstm_forward, "lstm_forward(cell, x) with state=None", cell, x)
        _dtype(out0, torch.float64, "outputs with state=None")
        check_close(out0, ref(x)[0], f"the outputs with state=None (zeros) for B={B}, T={T}", **TOL)
    # float32 stays float32
    g = _gen(3110)
    ref = _randomise(nn.LSTM(2, 3, batch_first=True), g)
    cell = LSTMCellScratch(2, 3)
    cell.load_state_dict({n.removesuffix("_l0"): p for n, p in ref.state_dict().items()})
    x = torch.randn(2, 4, 2, generator=g)
    outputs, _ = lstm_forward(cell, x)
    _dtype(outputs, torch.float32, "outputs of a float32 cell")
    check_close(outputs, ref(x)[0], "the outputs of a float32 cell", **TOL32)
    # gradients flow back through every step, to x and to the initial state
    g = _gen(3150)
    cell = _randomise(LSTMCellScratch(2, 3).double(), g)
    inputs = (_randn(2, 4, 2, g=g).requires_grad_(), _randn(2, 3, g=g).requires_grad_(),
              _randn(2, 3, g=g).requires_grad_())
    _gradcheck(lambda x, h, c: lstm_forward(cell, x, (h, c))[0], inputs, "lstm_forward over 4 steps")
    test_differential("lstm_forward", lstm_forward)


# ---------------------------------------------------------------- exercise 3: the variants
def _peephole_reference(x, h0, c0, w_ih, w_hh, bias, peep):
    gi, gf, gg, go = (x @ w_ih.T + h0 @ w_hh.T + bias).chunk(4, dim=1)
    i = torch.sigmoid(gi + peep[0] * c0)
    f = torch.sigmoid(gf + peep[1] * c0)
    c = f * c0 + i * torch.tanh(gg)
    o = torch.sigmoid(go + peep[2] * c)
    return o * torch.tanh(c), c


def _three_blocks(w_ih, w_hh, bias, H):
    """The rows i, g, o of PyTorch's four blocks: the 1997 cell's layout."""
    return (torch.cat([w_ih[:H], w_ih[2 * H:]]), torch.cat([w_hh[:H], w_hh[2 * H:]]),
            torch.cat([bias[:H], bias[2 * H:]]))


def _always_remember(w_ih, w_hh, bias, H, E):
    """A standard cell whose forget gate is exactly 1 (the 1997 cell in nn.LSTMCell's clothes)."""
    cell = nn.LSTMCell(E, H).to(w_ih.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(w_ih)
        cell.weight_hh.copy_(w_hh)
        cell.weight_ih[H:2 * H] = 0
        cell.weight_hh[H:2 * H] = 0
        cell.bias_ih.copy_(bias)
        cell.bias_ih[H:2 * H] = 1e4   # sigmoid(1e4) == 1.0
        cell.bias_hh.zero_()
    return cell


def test_variants(lstm1997_cell, peephole_lstm_cell) -> None:
    for k, (B, E, H) in enumerate(SHAPES):
        g = _gen(3200 + k)
        ref = _randomise(nn.LSTMCell(E, H).double(), g)
        x, h0, c0 = _randn(B, E, g=g), _randn(B, H, g=g), _randn(B, H, g=g)
        w_ih, w_hh = ref.weight_ih.detach(), ref.weight_hh.detach()
        bias = (ref.bias_ih + ref.bias_hh).detach()
        pair = (lambda h, c: (h, c)) if k % 2 == 0 else (lambda h, c: [h, c])
        label = f"B={B}, E={E}, H={H}"
        # peepholes at zero: exactly the standard cell
        h, c = _call(peephole_lstm_cell, "peephole_lstm_cell", x, pair(h0, c0), w_ih, w_hh, bias,
                     torch.zeros(3, H, dtype=torch.float64))
        rh, rc = ref(x, (h0, c0))
        check_close(c, rc, f"the peephole cell's c with zero peepholes vs nn.LSTMCell ({label})", **TOL,
                    hint="with peep = 0 the peephole cell is nn.LSTMCell: check the gate order i, f, g, o")
        check_close(h, rh, f"the peephole cell's h with zero peepholes ({label})", **TOL)
        # non-zero peepholes: against the equations
        peep = _randn(3, H, g=g)
        before = {"x": x.clone(), "h": h0.clone(), "c": c0.clone(), "weight_ih": w_ih.clone(),
                  "weight_hh": w_hh.clone(), "bias": bias.clone(), "peep": peep.clone()}
        h, c = _call(peephole_lstm_cell, "peephole_lstm_cell", x, pair(h0, c0), w_ih, w_hh, bias, peep)
        _unchanged(before, {"x": x, "h": h0, "c": c0, "weight_ih": w_ih, "weight_hh": w_hh, "bias": bias,
                            "peep": peep}, "peephole_lstm_cell")
        _dtype(h, torch.float64, "the peephole cell's h")
        _dtype(c, torch.float64, "the peephole cell's c")
        want_h, want_c = _peephole_reference(x, h0, c0, w_ih, w_hh, bias, peep)
        check_close(c, want_c, f"the peephole cell's c with non-zero peepholes ({label})", **TOL,
                    hint="the input and forget gates look at the old cell state c_{t-1}: i uses peep[0], "
                         "f uses peep[1] (rows of peep, which is (3, H): peep[:, k] would be a column)")
        check_close(h, want_h, f"the peephole cell's h with non-zero peepholes ({label})", **TOL,
                    hint="the output gate looks at the new cell state c_t, through peep[2]")
        # 1997: rows i, g, o; equal to a standard cell whose forget gate is always 1
        w3_ih, w3_hh, b3 = _three_blocks(w_ih, w_hh, bias, H)
        before = {"x": x.clone(), "h": h0.clone(), "c": c0.clone(), "weight_ih": w3_ih.clone(),
                  "weight_hh": w3_hh.clone(), "bias": b3.clone()}
        h, c = _call(lstm1997_cell, "lstm1997_cell", x, pair(h0, c0), w3_ih, w3_hh, b3)
        _unchanged(before, {"x": x, "h": h0, "c": c0, "weight_ih": w3_ih, "weight_hh": w3_hh, "bias": b3},
                   "lstm1997_cell")
        check_shape(c, (B, H), f"the 1997 cell state ({label})")
        _dtype(c, torch.float64, "the 1997 cell's c")
        rh, rc = _always_remember(w_ih, w_hh, bias, H, E)(x, (h0, c0))
        check_close(c, rc, f"the 1997 cell's c ({label})", **TOL,
                    hint="blocks in the order i, g, o; without a forget gate: c_t = c_{t-1} + i * g")
        check_close(h, rh, f"the 1997 cell's h ({label})", **TOL, hint="h = sigmoid(o) * tanh(c_t)")
    # float32 stays float32
    g = _gen(3210)
    x, h0, c0 = (torch.randn(2, n, generator=g) for n in (3, 4, 4))
    w_ih, w_hh, bias = torch.randn(16, 3, generator=g), torch.randn(16, 4, generator=g), torch.randn(16, generator=g)
    _dtype(peephole_lstm_cell(x, (h0, c0), w_ih, w_hh, bias, torch.randn(3, 4, generator=g))[0], torch.float32,
           "the peephole cell's h for float32 inputs")
    _dtype(lstm1997_cell(x, (h0, c0), *_three_blocks(w_ih, w_hh, bias, 4))[1], torch.float32,
           "the 1997 cell's c for float32 inputs")
    # extremes: a cell state near 1e4 (the 1997 cell's memory grows without bound)
    g = _gen(3220)
    ref = _randomise(nn.LSTMCell(3, 4).double(), g)
    w_ih, w_hh = ref.weight_ih.detach(), ref.weight_hh.detach()
    bias = (ref.bias_ih + ref.bias_hh).detach()
    x, h0, c0 = _randn(2, 3, g=g), _randn(2, 4, g=g), _randn(2, 4, g=g, scale=1e4)
    h, c = lstm1997_cell(x, (h0, c0), *_three_blocks(w_ih, w_hh, bias, 4))
    rh, rc = _always_remember(w_ih, w_hh, bias, 4, 3)(x, (h0, c0))
    check_close(h, rh, "the 1997 cell's h for a cell state near 1e4", **TOL,
                hint="use torch.tanh: a hand-written (exp(2c) - 1) / (exp(2c) + 1) is inf / inf = NaN there")
    peep = _randn(3, 4, g=g)
    h, c = peephole_lstm_cell(x, (h0, c0), w_ih, w_hh, bias, peep)
    want_h, want_c = _peephole_reference(x, h0, c0, w_ih, w_hh, bias, peep)
    check_close(h, want_h, "the peephole cell's h for a cell state near 1e4 (saturated gates)", **TOL,
                hint="use torch.sigmoid and torch.tanh, which stay finite for any input")
    # gradients through x, c and the peepholes
    g = _gen(3250)
    w_ih, w_hh, bias = _randn(12, 2, g=g), _randn(12, 3, g=g), _randn(12, g=g)
    h0 = _randn(2, 3, g=g)
    inputs = (_randn(2, 2, g=g).requires_grad_(), _randn(2, 3, g=g).requires_grad_(),
              _randn(3, 3, g=g).requires_grad_())
    _gradcheck(lambda x, c, p: torch.cat(peephole_lstm_cell(x, (h0, c), w_ih, w_hh, bias, p), -1), inputs,
               "peephole_lstm_cell")
    w3 = _three_blocks(_randn(12, 2, g=g), _randn(12, 3, g=g), _randn(12, g=g), 3)
    _gradcheck(lambda x, c: torch.cat(lstm1997_cell(x, (h0, c), *w3), -1), inputs[:2], "lstm1997_cell")
    test_differential("peephole_lstm_cell", peephole_lstm_cell)
    test_differential("lstm1997_cell", lstm1997_cell)


# ---------------------------------------------------------------- exercise 4: the GRU cell
def test_gru_cell(gru_cell) -> None:
    for k, (B, E, H) in enumerate(SHAPES):
        g = _gen(3300 + k)
        ref = _randomise(nn.GRUCell(E, H).double(), g)
        x, h0 = _randn(B, E, g=g), _randn(B, H, g=g)
        params = [p.detach() for p in (ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)]
        given = dict(zip(("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"), (x, h0, *params), strict=True))
        before = {n: t.clone() for n, t in given.items()}
        h = _call(gru_cell, "gru_cell", x, h0, *params)
        _unchanged(before, given, "gru_cell")
        label = f"B={B}, E={E}, H={H}"
        check_shape(h, (B, H), f"the GRU's h for {label}")
        _dtype(h, torch.float64, "the GRU's h")
        check_close(h, ref(x, h0), f"the GRU's h for {label}", **TOL,
                    hint="rows are ordered r, z, n; PyTorch applies the reset gate to (h W_hn^T + b_hn), "
                         "after the product")
    # float32 stays float32
    g = _gen(3310)
    ref = _randomise(nn.GRUCell(3, 4), g)
    x, h0 = torch.randn(2, 3, generator=g), torch.randn(2, 4, generator=g)
    h = gru_cell(x, h0, ref.weight_ih.detach(), ref.weight_hh.detach(), ref.bias_ih.detach(), ref.bias_hh.detach())
    _dtype(h, torch.float32, "the GRU's h for float32 inputs")
    check_close(h, ref(x, h0), "the GRU's h for float32 inputs", **TOL32)
    # extremes: saturated pre-activations; an update gate of exactly 1 copies the state
    g = _gen(3320)
    ref = _randomise(nn.GRUCell(4, 5).double(), g, scale=20.0)
    x, h0 = _randn(3, 4, g=g, scale=50.0), _randn(3, 5, g=g)
    params = [p.detach() for p in (ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)]
    check_close(gru_cell(x, h0, *params), ref(x, h0), "the GRU's h with saturated gates (pre-activations "
                "near 1e3)", **TOL, hint="use torch.sigmoid and torch.tanh: a hand-written exp(z) / (1 + exp(z)) "
                "overflows to inf / inf = NaN")
    bias_hh = params[3].clone()
    bias_hh[5:10] = 1e4                                  # z = sigmoid(1e4) = 1 exactly
    check_close(gru_cell(_randn(3, 4, g=g), h0, params[0], params[1], params[2], bias_hh), h0,
                "h when the update gate is 1 (it should be the old state, copied)", **TOL,
                hint="h_t = (1 - z) * n + z * h_{t-1}")
    # gradients through x, h and the weights
    g = _gen(3350)
    inputs = tuple(_randn(*s, g=g).requires_grad_() for s in ((2, 3), (2, 4), (12, 3), (12, 4), (12,), (12,)))
    _gradcheck(gru_cell, inputs, "gru_cell")
    test_differential("gru_cell", gru_cell)


# ---------------------------------------------------------------- exercise 5: forget-gate bias
def test_init_forget_bias(init_forget_bias) -> None:
    cases = [(1, 4, 1.0, False, torch.float32), (2, 3, 2.5, False, torch.float64), (3, 5, -1.0, False, torch.float32),
             (2, 3, 2, True, torch.float32), (1, 1, 0.5, True, torch.float64)]
    for layers, H, value, bi, dtype in cases:
        torch.manual_seed(3400 + layers + 10 * bi)
        lstm = nn.LSTM(2, H, num_layers=layers, bidirectional=bi, batch_first=True).to(dtype)
        label = f"{layers} layer(s), H={H}, bidirectional={bi}, {dtype}, value={value!r}"
        before = {n: p.detach().clone() for n, p in lstm.named_parameters()}
        objects = {n: id(p) for n, p in lstm.named_parameters()}
        result = init_forget_bias(lstm, value)
        check_true(result is None or result is lstm, "init_forget_bias changes the LSTM in place and returns "
                   "it (or None), not a new one")
        params = dict(lstm.named_parameters())
        check_true(set(params) == set(before), f"the LSTM's parameters are now {sorted(params)}, "
                   f"expected {sorted(before)}")
        check_true({n: id(p) for n, p in params.items()} == objects,
                   f"init_forget_bias replaced parameter objects ({label}): an optimizer made before would "
                   "no longer train them", hint="assign into the existing tensors, p[H:2 * H] = value, under "
                   "torch.no_grad()")
        for n, p in params.items():
            check_true(p.dtype == dtype, f"{n} is {p.dtype} after the call, but the LSTM was {dtype}",
                       hint="write into the existing parameter; do not build a new tensor for it")
            check_true(p.requires_grad and p.is_leaf, f"{n} should still be a trainable leaf ({label})",
                       hint="set the values under torch.no_grad(); do not switch requires_grad off")
            if n.startswith("weight"):
                check_close(p, before[n], f"{n}, a weight (it must not change)", atol=0, rtol=0)
                continue
            check_close(torch.cat([p[:H], p[2 * H:]]), torch.cat([before[n][:H], before[n][2 * H:]]),
                        f"the rows of {n} outside the forget gate ({label}; they must not change)", atol=0,
                        rtol=0, hint="only rows H .. 2H-1 belong to the forget gate (order i, f, g, o)")
            if n.startswith("bias_ih"):
                check_close(p[H:2 * H], torch.full((H,), float(value)), f"the forget rows {n}[H:2H] ({label})",
                            atol=1e-7, hint="every layer and both directions (names ending in _reverse): the "
                            "forget-gate bias is the sum bias_ih + bias_hh, so put the value in bias_ih and "
                            "zero the forget rows of bias_hh")
            else:
                check_close(p[H:2 * H], torch.zeros(H), f"the forget rows {n}[H:2H] ({label})", atol=1e-7,
                            hint="zero the forget rows of every bias_hh, so that the sum is the value")
    test_differential("init_forget_bias", init_forget_bias)


# ---------------------------------------------------------------- the experiment (exercise 5)
def _budget():
    from seqcourse.env import get_profile

    return get_profile().budget("03-lstm")


def lstm_held_out_mse(model, T: int) -> float:
    x, y = EXERCISES.reference("adding_problem")(1000, T, _gen(3500))
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x), y))


def test_lstm_solves_adding(namespace: dict) -> None:
    """The notebook's trained LSTM solves the adding problem (held-out data of the grader's own).
    The run uses the learner's ``init_forget_bias`` and nothing else of theirs, so a shortfall is
    charged to that exercise."""
    from seqcourse.tasks import ADDING_BASELINE_MSE

    guard.verify()
    budget = _budget()
    bar = budget.lstm_max_fraction * ADDING_BASELINE_MSE
    run = (namespace.get("adding_runs") or {}).get("lstm")
    shortfall = None
    if run is None or getattr(run, "model", None) is None:
        shortfall = "there is no trained LSTM in adding_runs['lstm']: the experiment cell stopped before it finished"
    elif run.diverged:
        shortfall = "the LSTM's training diverged (its loss became NaN or infinite)"
    else:
        mse = lstm_held_out_mse(run.model, budget.adding_T)
        if not mse <= bar:
            shortfall = (f"the trained LSTM's held-out MSE at T = {budget.adding_T} is {mse:.4f}, above this "
                         f"profile's bar of {bar:.4f} ({budget.lstm_max_fraction} of the baseline 1/6)")
    own = EXERCISES.learners(namespace, "init_forget_bias").get("init_forget_bias")
    judge_experiment(shortfall, "init_forget_bias", lambda: test_init_forget_bias(own), {})


# ---------------------------------------------------------------- differential tests
# Every exercise against its reference on generated inputs within Graded on (see _differential.py);
# EXAMPLES: how many inputs each answer tries (bench/differential_examples.py measures what each needs).
EXAMPLES = {"LSTMCellScratch": 25, "lstm_forward": 20, "lstm1997_cell": 25, "peephole_lstm_cell": 25,
            "gru_cell": 25, "init_forget_bias": 20}


def _state(h, c, given, as_list):
    return None if not given else [h, c] if as_list else (h, c)


@st.composite
def _sizes(draw, steps: bool = False):
    B, E, H = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    T = draw(st.integers(1, 5)) if steps else None
    return B, T, E, H, pick(draw, DTYPES), pick(draw, SCALES), gen(draw(seeds()))


@st.composite
def _scratch_cases(draw):
    B, _, E, H, dtype, scale, g = draw(_sizes())
    x, h, c = randn(g, B, E, dtype=dtype, scale=scale), randn(g, B, H, dtype=dtype), randn(g, B, H, dtype=dtype)
    x, h, c = with_grad((x, h, c), dtype)
    given, as_list = draw(st.booleans()), draw(st.booleans())
    return Case(((E, H), x, h, c, given, as_list, dtype == torch.float64, draw(seeds())),
                f"LSTMCellScratch({E}, {H}){'.double()' if dtype == torch.float64 else ''} on B={B}, inputs of size "
                f"{scale:g}, " + (f"a given state as a {'list' if as_list else 'tuple'}" if given else "state=None"),
                grads=(1, 2, 3) if dtype == torch.float64 and given else (1,) if dtype == torch.float64 else ())


def _scratch_forward(cls, ref_cls):
    def run(sizes, x, h, c, given, as_list, double, seed):
        state = module_call(ref_cls, sizes, seed).state_dict()
        cell = module_call(cls, sizes, seed, state)
        cell = cell.double() if double else cell
        return cell(x, _state(h, c, given, as_list))
    return run


@st.composite
def _forward_cases(draw):
    B, T, E, H, dtype, scale, g = draw(_sizes(steps=True))
    cell = _randomise(nn.LSTMCell(E, H).to(dtype), g)
    x, h, c = randn(g, B, T, E, dtype=dtype, scale=scale), randn(g, B, H, dtype=dtype), randn(g, B, H, dtype=dtype)
    x, h, c = with_grad((x, h, c), dtype)
    given, as_list = draw(st.booleans()), draw(st.booleans())
    return Case((cell, x, h, c, given, as_list), f"an nn.LSTMCell({E}, {H}) ({dtype}) over B={B}, T={T}, inputs of "
                f"size {scale:g}, " + ("a given state" if given else "state=None"),
                grads=((1, 2, 3) if given else (1,)) if dtype == torch.float64 else ())


def _forwarding(fn):
    def run(cell, x, h, c, given, as_list):
        return fn(cell, x, _state(h, c, given, as_list))
    return run


@st.composite
def _variant_cases(draw, gates: int, peephole: bool = False):
    B, _, E, H, dtype, scale, g = draw(_sizes())
    x, h = randn(g, B, E, dtype=dtype, scale=scale), randn(g, B, H, dtype=dtype)
    c = randn(g, B, H, dtype=dtype, scale=pick(draw, (1.0, 1e4)))        # a grown memory, too
    w_ih, w_hh, bias = (randn(g, gates * H, E, dtype=dtype, scale=0.5), randn(g, gates * H, H, dtype=dtype, scale=0.5),
                        randn(g, gates * H, dtype=dtype, scale=0.5))
    tensors = [x, h, c, w_ih, w_hh, bias]
    if peephole:
        zero = draw(st.booleans())
        tensors.append(torch.zeros(3, H, dtype=dtype) if zero else randn(g, 3, H, dtype=dtype, scale=0.5))
    tensors = list(with_grad(tensors, dtype))
    as_list = draw(st.booleans())
    label = (f"B={B}, E={E}, H={H}, {dtype}, inputs of size {scale:g}, |c| up to {float(c.detach().abs().max()):.3g}, "
             f"the state as a {'list' if as_list else 'tuple'}" + (", zero peepholes" if peephole and zero else ""))
    return Case((*tensors, as_list), label, grads=tuple(range(len(tensors))) if dtype == torch.float64 else ())


def _variant(fn):
    def run(x, h, c, *rest):
        *weights, as_list = rest
        return fn(x, [h, c] if as_list else (h, c), *weights)
    return run


@st.composite
def _gru_cases(draw):
    B, _, E, H, dtype, scale, g = draw(_sizes())
    x, h = randn(g, B, E, dtype=dtype, scale=scale), randn(g, B, H, dtype=dtype)
    weights = [randn(g, 3 * H, E, dtype=dtype, scale=0.5), randn(g, 3 * H, H, dtype=dtype, scale=0.5),
               randn(g, 3 * H, dtype=dtype, scale=0.5), randn(g, 3 * H, dtype=dtype, scale=0.5)]
    tensors = with_grad([x, h, *weights], dtype)
    return Case(tensors, f"B={B}, E={E}, H={H}, {dtype}, inputs of size {scale:g}",
                grads=tuple(range(6)) if dtype == torch.float64 else ())


@st.composite
def _bias_cases(draw):
    E, H, layers, both = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.booleans())
    dtype, g = pick(draw, DTYPES), gen(draw(seeds()))
    lstm = _randomise(nn.LSTM(E, H, num_layers=layers, bidirectional=both).to(dtype), g)
    value = pick(draw, (1.0, 2.5, -1.0, 0.0, 3))
    return Case((lstm, value), f"nn.LSTM({E}, {H}, num_layers={layers}, bidirectional={both}) ({dtype}), "
                f"value {value!r}")


def _biasing(fn):
    def run(lstm, value):
        fn(lstm, value)
        return lstm
    return run


def test_differential(name: str, answer) -> None:
    """``name``'s answer against the reference on generated inputs (see EXAMPLES)."""
    reference = EXERCISES.reference(name)
    wraps = {"LSTMCellScratch": (_scratch_cases(), lambda f: _scratch_forward(f, reference)),
             "lstm_forward": (_forward_cases(), _forwarding),
             "lstm1997_cell": (_variant_cases(3), _variant),
             "peephole_lstm_cell": (_variant_cases(4, peephole=True), _variant),
             "gru_cell": (_gru_cases(), lambda f: f),
             "init_forget_bias": (_bias_cases(), _biasing)}
    cases, wrap = wraps[name]
    differential(wrap(answer), wrap(reference), cases, name, EXAMPLES[name])
