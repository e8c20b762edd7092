"""Hidden tests of lesson 03, "LSTM gates (and GRU)"."""

from __future__ import annotations

import torch
from torch import nn

from seqcourse.checks import check_close, check_shape, check_true, check_type
from seqcourse.grading import guard
from seqcourse_hidden._isolate import Exercises

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("03-lstm")

# (B, E, H): E != H catches transposes, E == H catches swapped matrices, B = 1 the edge case.
SHAPES = [(3, 4, 5), (1, 2, 3), (4, 6, 6), (2, 3, 2)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomise(module: nn.Module, g: torch.Generator, scale: float = 0.5) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


# ---------------------------------------------------------------- exercise 1: the LSTM cell
def test_lstm_cell(LSTMCellScratch) -> None:
    for k, (B, E, H) in enumerate(SHAPES):
        g = _gen(3000 + k)
        ref = _randomise(nn.LSTMCell(E, H).double(), g)
        cell = LSTMCellScratch(E, H).double()
        names = {n: tuple(p.shape) for n, p in cell.named_parameters()}
        want = {n: tuple(p.shape) for n, p in ref.named_parameters()}
        check_true(names == want, f"parameters {names} should be exactly nn.LSTMCell's {want}")
        cell.load_state_dict(ref.state_dict())
        x = torch.randn(B, E, generator=g, dtype=torch.float64)
        h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        c0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        result = cell(x, (h0, c0))
        check_true(isinstance(result, tuple) and len(result) == 2, "forward returns (h, c)")
        h, c = result
        rh, rc = ref(x, (h0, c0))
        check_shape(h, (B, H), f"h for B={B}, E={E}, H={H}")
        check_close(c, rc, f"c vs nn.LSTMCell (case {k})", atol=1e-10, rtol=1e-8,
                    hint="gate order in PyTorch's weights is input, forget, cell (g), output")
        check_close(h, rh, f"h vs nn.LSTMCell (case {k})", atol=1e-10, rtol=1e-8)
        if k == 0:  # a missing state means zeros, as in nn.LSTMCell
            zh, zc = cell(x)
            check_close(zc, ref(x)[1], "c with state=None (zeros)", atol=1e-10, rtol=1e-8)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    cell = _randomise(LSTMCellScratch(3, 4).double(), _gen(3050))
    check_true(torch.autograd.gradcheck(lambda x: cell(x)[0], (x,), raise_exception=False),
               "gradients through your cell disagree with finite differences")


# ---------------------------------------------------------------- exercise 2: over a sequence
def test_lstm_forward(lstm_forward, LSTMCellScratch) -> None:
    for k, (B, E, H) in enumerate(SHAPES):
        T = [5, 1, 3, 7][k]
        g = _gen(3100 + k)
        ref = _randomise(nn.LSTM(E, H, batch_first=True).double(), g)
        cell = LSTMCellScratch(E, H).double()
        cell.load_state_dict({n.removesuffix("_l0"): p for n, p in ref.state_dict().items()})
        x = torch.randn(B, T, E, generator=g, dtype=torch.float64)
        h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        c0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        outputs, (h, c) = lstm_forward(cell, x, (h0, c0))
        r_out, (rh, rc) = ref(x, (h0[None], c0[None]))
        check_shape(outputs, (B, T, H), f"outputs for B={B}, T={T}")
        check_close(outputs, r_out, f"outputs vs nn.LSTM (case {k})", atol=1e-10, rtol=1e-8)
        check_close(h, rh[0], "final h vs nn.LSTM", atol=1e-10, rtol=1e-8)
        check_close(c, rc[0], "final c vs nn.LSTM", atol=1e-10, rtol=1e-8,
                    hint="return the cell state after the last step too")
        out0, _ = lstm_forward(cell, x)
        check_close(out0, ref(x)[0], "outputs with state=None (zeros)", atol=1e-10, rtol=1e-8)


# ---------------------------------------------------------------- exercise 3: the variants
def test_variants(lstm1997_cell, peephole_lstm_cell) -> None:
    for k, (B, E, H) in enumerate(SHAPES):
        g = _gen(3200 + k)
        ref = _randomise(nn.LSTMCell(E, H).double(), g)
        x = torch.randn(B, E, generator=g, dtype=torch.float64)
        h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        c0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        w_ih, w_hh = ref.weight_ih.detach(), ref.weight_hh.detach()
        bias = (ref.bias_ih + ref.bias_hh).detach()
        # peepholes at zero: exactly the standard cell
        h, c = peephole_lstm_cell(x, (h0, c0), w_ih, w_hh, bias, torch.zeros(3, H, dtype=torch.float64))
        rh, rc = ref(x, (h0, c0))
        check_close(c, rc, "peephole cell with zero peepholes vs nn.LSTMCell", atol=1e-10, rtol=1e-8)
        check_close(h, rh, "peephole h with zero peepholes", atol=1e-10, rtol=1e-8)
        # with peepholes: against the definition
        peep = torch.randn(3, H, generator=g, dtype=torch.float64)
        gi, gf, gg, go = (x @ w_ih.T + h0 @ w_hh.T + bias).chunk(4, dim=1)
        i = torch.sigmoid(gi + peep[0] * c0)
        f = torch.sigmoid(gf + peep[1] * c0)
        c_ref = f * c0 + i * torch.tanh(gg)
        o = torch.sigmoid(go + peep[2] * c_ref)
        h, c = peephole_lstm_cell(x, (h0, c0), w_ih, w_hh, bias, peep)
        check_close(c, c_ref, f"peephole c (case {k})", atol=1e-10, rtol=1e-8,
                    hint="the input and forget gates look at the old cell state c_{t-1}")
        check_close(h, o * torch.tanh(c_ref), f"peephole h (case {k})", atol=1e-10, rtol=1e-8,
                    hint="the output gate looks at the new cell state c_t")
        # 1997: rows i, g, o; equal to a standard cell whose forget gate is always 1
        w3_ih = torch.cat([w_ih[:H], w_ih[2 * H:]])
        w3_hh = torch.cat([w_hh[:H], w_hh[2 * H:]])
        b3 = torch.cat([bias[:H], bias[2 * H:]])
        h, c = lstm1997_cell(x, (h0, c0), w3_ih, w3_hh, b3)
        check_shape(c, (B, H), "1997 cell state")
        always_remember = nn.LSTMCell(E, H).double()
        with torch.no_grad():
            always_remember.weight_ih.copy_(w_ih)
            always_remember.weight_hh.copy_(w_hh)
            always_remember.weight_ih[H:2 * H] = 0
            always_remember.weight_hh[H:2 * H] = 0
            always_remember.bias_ih.copy_(bias)
            always_remember.bias_ih[H:2 * H] = 1e4  # sigmoid(1e4) == 1.0 in float64
            always_remember.bias_hh.zero_()
        rh, rc = always_remember(x, (h0, c0))
        check_close(c, rc, f"1997 cell vs an LSTM whose forget gate is 1 (case {k})", atol=1e-10,
                    rtol=1e-8, hint="without a forget gate: c_t = c_{t-1} + i * g")
        check_close(h, rh, f"1997 h (case {k})", atol=1e-10, rtol=1e-8)
        check_close(c - c0, torch.sigmoid(x @ w3_ih[:H].T + h0 @ w3_hh[:H].T + b3[:H])
                    * torch.tanh(x @ w3_ih[H:2 * H].T + h0 @ w3_hh[H:2 * H].T + b3[H:2 * H]),
                    "c_t - c_{t-1} in the 1997 cell", atol=1e-10, rtol=1e-8)


# ---------------------------------------------------------------- exercise 4: the GRU cell
def test_gru_cell(gru_cell) -> None:
    for k, (B, E, H) in enumerate(SHAPES):
        g = _gen(3300 + k)
        ref = _randomise(nn.GRUCell(E, H).double(), g)
        x = torch.randn(B, E, generator=g, dtype=torch.float64)
        h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        h = gru_cell(x, h0, ref.weight_ih.detach(), ref.weight_hh.detach(), ref.bias_ih.detach(),
                     ref.bias_hh.detach())
        check_shape(h, (B, H), f"GRU h for B={B}, E={E}, H={H}")
        check_close(h, ref(x, h0), f"gru_cell vs nn.GRUCell (case {k})", atol=1e-10, rtol=1e-8,
                    hint="PyTorch applies the reset gate to (W_hn h + b_hn), after the product")
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    ref = _randomise(nn.GRUCell(3, 4).double(), _gen(3350))
    params = [p.detach() for p in (ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)]
    check_true(torch.autograd.gradcheck(lambda x, h: gru_cell(x, h, *params), (x, h),
                                        raise_exception=False),
               "gradients through gru_cell disagree with finite differences")


# ---------------------------------------------------------------- exercise 5: forget-gate bias
def test_init_forget_bias(init_forget_bias) -> None:
    for layers, H, value in [(1, 4, 1.0), (2, 3, 2.5), (3, 5, -1.0)]:
        torch.manual_seed(3400 + layers)
        lstm = nn.LSTM(2, H, num_layers=layers, batch_first=True)
        before = {n: p.detach().clone() for n, p in lstm.named_parameters()}
        result = init_forget_bias(lstm, value)
        check_true(result is None or result is lstm, "init_forget_bias changes the LSTM in place")
        for n, p in lstm.named_parameters():
            if n.startswith("weight"):
                check_close(p, before[n], f"{n} (weights must not change)", atol=0)
                continue
            rows = slice(H, 2 * H)
            others = torch.cat([p[:H], p[2 * H:]])
            check_close(others, torch.cat([before[n][:H], before[n][2 * H:]]),
                        f"{n} outside the forget gate (must not change)", atol=0,
                        hint="only rows H .. 2H-1 belong to the forget gate (order i, f, g, o)")
            if n.startswith("bias_ih"):
                check_close(p[rows], torch.full((H,), value), f"{n}[H:2H]", atol=1e-7,
                            hint="the forget-gate bias is the sum bias_ih + bias_hh: put the value "
                                 "in bias_ih and zero the forget rows of bias_hh")
            else:
                check_close(p[rows], torch.zeros(H), f"{n}[H:2H]", atol=1e-7)
        check_true(all(p.requires_grad for p in lstm.parameters()), "parameters must stay trainable")


def _budget():
    from seqcourse.env import get_profile

    return get_profile().budget("03-lstm")


def test_lstm_solves_adding(adding_problem, init_forget_bias) -> None:
    """The LSTM solves the adding problem at a length where the RNN stays at the baseline."""
    from seqcourse.tasks import ADDING_BASELINE_MSE, train_adding

    guard.verify()
    budget = _budget()
    common = dict(T=budget.adding_T, steps=budget.adding_steps, hidden=budget.hidden, lr=budget.lr,
                  seed=21)
    lstm = train_adding(adding_problem, cell="lstm", init=lambda m: init_forget_bias(m, 1.0), **common)
    check_true(lstm.score <= budget.lstm_max_fraction * ADDING_BASELINE_MSE,
               f"the LSTM reached MSE {lstm.score:.4f} at T={budget.adding_T}; it should solve it")
    rnn = train_adding(adding_problem, cell="rnn", **common)
    check_true(rnn.score >= budget.rnn_fail_fraction * ADDING_BASELINE_MSE,
               f"the RNN reached MSE {rnn.score:.4f} at T={budget.adding_T}; it should fail")
    check_type(lstm.losses, list, "losses")
