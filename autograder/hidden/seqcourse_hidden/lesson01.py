"""Hidden tests of lesson 01, "Sequences and the RNN cell".

Which test covers which class of mistake, per exercise ("n/a" says why a class does not apply).
Grading runs on the CPU: the dtype cases also catch a tensor made without the input's dtype and
device (``torch.zeros(B, H)`` is float32 on the CPU whatever the input is).

| exercise | dtype | input | edge | extreme | side-effect |
|---|---|---|---|---|---|
| bag_of_embeddings | test_bag_of_embeddings: float64 and float32 tables, the result keeps the table's dtype | test_bag_of_embeddings: a table whose pad row (id 0) is not zero | test_bag_of_embeddings: B = 1 with T = 1, lengths 1 .. T in any order | n/a: a masked mean has no overflow or saturation to meet | test_bag_of_embeddings: tokens, lengths and the table unchanged; gradients reach the table |
| rnn_cell | test_rnn_cell: float64 and float32 in, the same dtype out | n/a: five tensors of fixed shapes, no default state | test_rnn_cell: B = 1, E = H and E != H, H = 2 | test_rnn_cell: pre-activations of size 1e3 (saturated: +-1, not NaN) | test_rnn_cell: every argument unchanged; gradcheck on all five inputs |
| rnn_forward | test_rnn_forward: float64 and float32 states and final state | test_rnn_forward: a given non-zero initial state s0 | test_rnn_forward: B = 1 with T = 1, T = 7 | n/a: the arithmetic is rnn_cell's (reference here) | test_rnn_forward: x, s0, W, U, b unchanged; backward through the states reaches W, U, b and s0 |
| to_torch_rnn | test_to_torch_rnn: float64 and float32 W, the module's parameters take W's dtype | test_to_torch_rnn: W, U, b that require gradients (trained parameters) | test_to_torch_rnn: B = 1 with T = 1, E = H | n/a: nn.RNN does the arithmetic | test_to_torch_rnn: W, U, b unchanged; the module shares no memory with them; parameters trainable |
| SurnameRNN | test_surname_rnn: model.double() gives float64 logits | test_surname_rnn: lengths in any order (not sorted) | test_surname_rnn: B = 1, names of length 1, extra padding columns | n/a: nn.RNN does the arithmetic | test_surname_rnn: layers named embedding, rnn, out (section 8 reads them); tokens and lengths unchanged; gradients reach the embedding |
| train_step | n/a: train_step makes no tensor; it returns a Python float | test_train_step: a loss_fn that is not plain cross-entropy, SGD and Adam, a batch as a tuple and as a list | test_train_step: a batch of one name (B = 1) | n/a: one optimiser step, no arithmetic of its own | test_train_step: stale gradients cleared; the batch unchanged; a float returned (no graph kept) |

The experiment, test_trained_classifier, is charged to train_step; a shortfall caused by a
SurnameRNN that fails its own tests is charged there (judge_experiment).
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import nn

from seqcourse import guard
from seqcourse.checks import check_close, check_shape, check_true, check_type
from seqcourse_hidden._differential import (
    DTYPES,
    SCALES,
    TOLERANCE,
    Case,
    differential,
    module_call,
    pick,
    randn,
    seeds,
    with_grad,
)
from seqcourse_hidden._differential import lengths as random_lengths
from seqcourse_hidden._isolate import Exercises, judge_experiment
from seqcourse_hidden._support import check_unchanged as _check_unchanged
from seqcourse_hidden._support import snapshot as _snapshot

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("01-rnn-cell")

# Shapes (B, T, E, H) chosen to catch mistakes that square or equal sizes would hide, plus the
# square case E == H that catches swapped or transposed matrices, and the edge cases B = 1, T = 1.
SHAPES = [(3, 5, 4, 6), (1, 1, 2, 3), (4, 2, 5, 5), (2, 7, 3, 2), (5, 3, 6, 6)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tol(dtype) -> dict:
    return TOLERANCE[dtype]          # the tolerance every lesson states


def _params(E: int, H: int, g: torch.Generator, dtype=torch.float64):
    return (torch.randn(E, H, generator=g, dtype=dtype) * 0.7,
            torch.randn(H, H, generator=g, dtype=dtype) * 0.7,
            torch.randn(H, generator=g, dtype=dtype) * 0.5)


def _copy_weights(module, W, U, b, suffix: str = ""):
    """Load our (W, U, b) into an nn.RNNCell (suffix "") or nn.RNN (suffix "_l0"), bias_hh zero."""
    with torch.no_grad():
        getattr(module, f"weight_ih{suffix}").copy_(W.T)
        getattr(module, f"weight_hh{suffix}").copy_(U.T)
        getattr(module, f"bias_ih{suffix}").copy_(b)
        getattr(module, f"bias_hh{suffix}").zero_()
    return module


def _cell_reference(E: int, H: int, W, U, b) -> nn.RNNCell:
    return _copy_weights(nn.RNNCell(E, H, nonlinearity="tanh").to(W.dtype), W, U, b)


def _rnn_reference(E: int, H: int, W, U, b) -> nn.RNN:
    return _copy_weights(nn.RNN(E, H, batch_first=True).to(W.dtype), W, U, b, "_l0")


# ---------------------------------------------------------------- exercise 1: bag of embeddings
def test_bag_of_embeddings(bag_of_embeddings) -> None:
    g = _gen(101)
    cases = [(4, 6, 3, torch.float64), (1, 1, 5, torch.float64), (3, 9, 2, torch.float32),
             (6, 4, 4, torch.float64), (5, 7, 3, torch.float32)]
    for B, T, E, dtype in cases:
        V = 11
        emb = nn.Embedding(V, E, padding_idx=0).to(dtype)
        with torch.no_grad():
            emb.weight.copy_(torch.randn(V, E, generator=g, dtype=torch.float64))
            emb.weight[0] = 3.0  # a pad vector that is not zero: it must be masked, not summed
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[int(torch.randint(0, B, (1,), generator=g))] = T   # one full row, anywhere
        tokens = torch.randint(1, V, (B, T), generator=g)
        mask = torch.arange(T)[None, :] < lengths[:, None]
        tokens = tokens.masked_fill(~mask, 0)
        saved = _snapshot(tokens=tokens, lengths=lengths, weight=emb.weight)
        out = bag_of_embeddings(tokens, lengths, emb)
        check_shape(out, (B, E), f"bag_of_embeddings output for B={B}, T={T}, E={E}")
        check_true(out.dtype == dtype, f"bag_of_embeddings returned {out.dtype} for a {dtype} embedding "
                   "table: the result must keep the table's dtype",
                   hint="a tensor made with torch.zeros(B, E) or .float() is float32: compute on the "
                        "embedded vectors, or give new tensors dtype= and device= of the input")
        _check_unchanged(saved, dict(tokens=tokens, lengths=lengths, weight=emb.weight), "bag_of_embeddings",
                         hint="mask the embedded vectors instead of editing the table or the inputs "
                              "(the pad row is a parameter of someone else's model)")
        table = emb.weight.detach().double()
        expected = torch.stack([table[tokens[i, : lengths[i]]].mean(0) for i in range(B)])
        check_close(out, expected, f"the bag of embeddings for B={B}, T={T} ({dtype})", **_tol(dtype),
                    hint="mean over each sequence's own length, not over T or over the batch")
        # order does not matter: a permutation of the true tokens gives the same vector
        perm = tokens.clone()
        for i in range(B):
            n = int(lengths[i])
            perm[i, :n] = tokens[i, torch.randperm(n, generator=g)]
        check_close(bag_of_embeddings(perm, lengths, emb), out, "the bag of a permuted sequence", **_tol(dtype))
    # gradients reach the embedding table
    emb = nn.Embedding(7, 3)
    out = bag_of_embeddings(torch.tensor([[1, 2, 0]]), torch.tensor([2]), emb)
    out.sum().backward()
    check_true(emb.weight.grad is not None and bool(emb.weight.grad[1].abs().sum() > 0),
               "no gradient reached the embedding table: keep the computation in torch")
    test_differential("bag_of_embeddings", bag_of_embeddings)


# ---------------------------------------------------------------- exercise 2: the RNN cell
_CELL_HINT = ("s_t = tanh(x_t @ W + s_prev @ U + b) with W (E, H) and U (H, H): not U.T or W.T "
              "(those are nn.RNNCell's stored layout)")


def test_rnn_cell(rnn_cell) -> None:
    for k, (B, _T, E, H) in enumerate(SHAPES):
        dtype = torch.float32 if k == 3 else torch.float64
        g = _gen(200 + k)
        W, U, b = _params(E, H, g, dtype)
        x = torch.randn(B, E, generator=g, dtype=dtype)
        s = torch.randn(B, H, generator=g, dtype=dtype)
        saved = _snapshot(x_t=x, s_prev=s, W=W, U=U, b=b)
        out = rnn_cell(x, s, W, U, b)
        check_shape(out, (B, H), f"rnn_cell output for B={B}, E={E}, H={H}",
                    hint="keep the batch axis, also for B = 1 (no .squeeze())")
        check_true(out.dtype == dtype, f"rnn_cell returned {out.dtype} for {dtype} inputs: keep the inputs' "
                   "dtype (no .float(), .double() or constants of another dtype)")
        _check_unchanged(saved, dict(x_t=x, s_prev=s, W=W, U=U, b=b), "rnn_cell",
                         hint="return a new state; do not write it into s_prev")
        ref = _cell_reference(E, H, W, U, b)(x, s)
        check_close(out, ref, f"the new state for B={B}, E={E}, H={H} ({dtype})", **_tol(dtype), hint=_CELL_HINT)
    # saturated units: pre-activations of size 1e3 give states of exactly +-1, not NaN
    for dtype in (torch.float64, torch.float32):
        g = _gen(240)
        W, U, b = _params(3, 4, g, dtype)
        x = torch.randn(2, 3, generator=g, dtype=dtype) * 1e3
        s = torch.randn(2, 4, generator=g, dtype=dtype)
        check_close(rnn_cell(x, s, W, U, b), _cell_reference(3, 4, W, U, b)(x, s),
                    f"the new state for saturated units (pre-activations near 1e3, {dtype})", **_tol(dtype),
                    hint="use torch.tanh: a tanh written with exp overflows (inf / inf is NaN) for large inputs")
    # gradients with respect to every input, checked numerically
    g = _gen(250)
    W, U, b = (p.requires_grad_() for p in _params(3, 4, g))
    x = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    check_true(torch.autograd.gradcheck(rnn_cell, (x, s, W, U, b), raise_exception=False),
               "rnn_cell's gradients disagree with finite differences: use differentiable torch "
               "operations only (no .detach(), .item() or NumPy)")
    test_differential("rnn_cell", rnn_cell)


# ---------------------------------------------------------------- exercise 3: unrolling
def test_rnn_forward(rnn_forward) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        dtype = torch.float32 if k == 2 else torch.float64
        g = _gen(300 + k)
        W, U, b = _params(E, H, g, dtype)
        x = torch.randn(B, T, E, generator=g, dtype=dtype)
        s0 = torch.randn(B, H, generator=g, dtype=dtype)    # a given initial state, not zeros
        saved = _snapshot(x=x, s0=s0, W=W, U=U, b=b)
        result = rnn_forward(x, s0, W, U, b)
        check_true(isinstance(result, tuple) and len(result) == 2,
                   "rnn_forward must return a tuple (states, final)")
        states, final = result
        check_shape(states, (B, T, H), f"states for B={B}, T={T}, E={E}, H={H}")
        check_shape(final, (B, H), f"the final state for B={B}, T={T}")
        check_true(states.dtype == dtype and final.dtype == dtype,
                   f"rnn_forward returned states of {states.dtype} and a final state of {final.dtype} for "
                   f"{dtype} inputs: keep the inputs' dtype",
                   hint="a tensor made with torch.zeros(B, T, H) is float32: collect the states in a list "
                        "and torch.stack them")
        _check_unchanged(saved, dict(x=x, s0=s0, W=W, U=U, b=b), "rnn_forward")
        ref_states, ref_final = _rnn_reference(E, H, W, U, b)(x, s0.unsqueeze(0))
        check_close(states, ref_states, f"the states for B={B}, T={T} from a given s0 ({dtype})", **_tol(dtype),
                    hint="start from the given s0 (not zeros) and carry each new state to the next step")
        check_close(final, ref_final[0], f"the final state for B={B}, T={T} ({dtype})", **_tol(dtype))
    # the same weights serve every step: gradients equal nn.RNN's, and reach s0
    g = _gen(350)
    W, U, b = (p.requires_grad_() for p in _params(3, 4, g))
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    s0 = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    states, _ = rnn_forward(x, s0, W, U, b)
    try:
        (states ** 2).sum().backward()
    except RuntimeError as exc:
        check_true(False, f"backward through rnn_forward's states failed: {str(exc).splitlines()[0]}",
                   hint="do not write into a tensor autograd still needs (copy_, [:] =, +=): build each "
                        "new state as a new tensor, collect them in a list and torch.stack them")
    rnn = _rnn_reference(3, 4, W.detach(), U.detach(), b.detach())
    h0 = s0.detach().clone().unsqueeze(0).requires_grad_()
    (rnn(x, h0)[0] ** 2).sum().backward()
    check_true(W.grad is not None and U.grad is not None and s0.grad is not None,
               "no gradient reached W, U or s0: keep every state in the autograd graph")
    check_close(U.grad, rnn.weight_hh_l0.grad.T, "the gradient of U", atol=1e-9, rtol=1e-7,
                hint="backpropagation through time sums U's gradient over every step")
    check_close(W.grad, rnn.weight_ih_l0.grad.T, "the gradient of W", atol=1e-9, rtol=1e-7)
    check_close(b.grad, rnn.bias_ih_l0.grad, "the gradient of b", atol=1e-9, rtol=1e-7)
    check_close(s0.grad, h0.grad[0], "the gradient of s0", atol=1e-9, rtol=1e-7)
    test_differential("rnn_forward", rnn_forward)


# ---------------------------------------------------------------- exercise 4: nn.RNN on copied weights
def test_to_torch_rnn(to_torch_rnn) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        dtype = torch.float32 if k == 3 else torch.float64
        g = _gen(400 + k)
        W, U, b = _params(E, H, g, dtype)
        if k == 4:   # trained parameters require gradients
            W, U, b = (p.requires_grad_() for p in (W, U, b))
        saved = _snapshot(W=W, U=U, b=b)
        rnn = to_torch_rnn(W, U, b)
        check_type(rnn, nn.RNN, "to_torch_rnn's result")
        check_true(rnn.batch_first, "the nn.RNN must be built with batch_first=True: our tensors are (B, T, E)")
        got = sorted({str(p.dtype) for p in rnn.parameters()})
        check_true(got == [str(dtype)], f"the nn.RNN's parameters are {', '.join(got)} for a W of {dtype}: "
                   "they must take W's dtype", hint="nn.RNN(...) is built in float32: move it with .to(W.dtype) "
                                                     "before copying (copy_ silently rounds to float32)")
        _check_unchanged(saved, dict(W=W, U=U, b=b), "to_torch_rnn")
        x = torch.randn(B, T, E, generator=g, dtype=dtype)
        s0 = torch.randn(B, H, generator=g, dtype=dtype)
        with torch.no_grad():
            out, h_n = rnn(x, s0.unsqueeze(0))
        # reference by the definition, step by step, in float64
        W64, U64, b64 = (p.detach().double() for p in (W, U, b))
        s, ref = s0.double(), []
        for t in range(T):
            s = torch.tanh(x[:, t].double() @ W64 + s @ U64 + b64)
            ref.append(s)
        ref = torch.stack(ref, dim=1)
        check_close(out, ref, f"nn.RNN's states against the cell's definition (B={B}, T={T}, {dtype})",
                    **_tol(dtype),
                    hint="nn.RNN stores weight_ih as (H, E) and computes x @ weight_ih.T + bias_ih + "
                         "h @ weight_hh.T + bias_hh: copy W.T and U.T, and b into one bias only")
        check_close(h_n[0], ref[:, -1], f"nn.RNN's final state (B={B}, T={T})", **_tol(dtype))
    # the parameters stay trainable, and training them leaves W, U and b alone
    W, U, b = _params(2, 3, _gen(450))
    saved = _snapshot(W=W, U=U, b=b)
    rnn = to_torch_rnn(W, U, b)
    check_true(all(p.requires_grad for p in rnn.parameters()),
               "the nn.RNN's parameters should still require gradients (copy under torch.no_grad())")
    with torch.no_grad():
        for p in rnn.parameters():
            p.add_(1.0)   # what an optimiser step does
    _check_unchanged(saved, dict(W=W, U=U, b=b), "training the returned nn.RNN",
                     hint="its parameters share memory with W, U or b (nn.Parameter(W.T) is a view of W): "
                          "copy the values into the module's own parameters with param.copy_(...)")
    test_differential("to_torch_rnn", to_torch_rnn)


# ---------------------------------------------------------------- exercise 5: the classifier
_LAYERS = (("embedding", nn.Embedding), ("rnn", nn.RNN), ("out", nn.Linear))


def test_surname_rnn(SurnameRNN) -> None:
    torch.manual_seed(500)
    V, E, H, C = 13, 5, 7, 4
    model = SurnameRNN(V, E, H, C)
    check_type(model, nn.Module, "SurnameRNN(...)")
    for name, kind in _LAYERS:
        check_true(isinstance(getattr(model, name, None), kind),
                   f"SurnameRNN has no {kind.__name__} called self.{name}",
                   hint="name the layers self.embedding, self.rnn and self.out: section 8 feeds a name "
                        "through classifier.rnn(classifier.embedding(ids)) and classifier.out")
    check_true((model.embedding.num_embeddings, model.embedding.embedding_dim, model.rnn.input_size,
                model.rnn.hidden_size, model.out.in_features, model.out.out_features) == (V, E, E, H, H, C),
               "the layers' sizes should be Embedding(V, E), RNN(E, H) and Linear(H, C)")
    check_true(model.rnn.batch_first, "self.rnn must be built with batch_first=True: tokens are (B, T)")
    model.eval()
    g = _gen(501)
    lengths = torch.tensor([6, 1, 3, 6, 2])    # not sorted
    tokens = torch.randint(2, V, (5, 6), generator=g)
    tokens = tokens.masked_fill(torch.arange(6)[None, :] >= lengths[:, None], 0)
    saved = _snapshot(tokens=tokens, lengths=lengths)
    try:
        with torch.no_grad():
            logits = model(tokens, lengths)
    except RuntimeError as exc:
        check_true(False, f"SurnameRNN raised on lengths {lengths.tolist()} (not sorted): "
                   f"{str(exc).splitlines()[0]}",
                   hint="lengths come in any order: pack_padded_sequence needs enforce_sorted=False, or "
                        "index the states at lengths - 1 instead of packing")
    check_shape(logits, (5, C), "SurnameRNN output (B, C)")
    check_true(logits.dtype == torch.float32, f"SurnameRNN returned {logits.dtype} logits for a float32 model")
    _check_unchanged(saved, dict(tokens=tokens, lengths=lengths), "SurnameRNN's forward",
                     hint="lengths -= 1 changes the caller's tensor: write lengths - 1")
    # forward is self.out of self.rnn's state after each name's last real character
    with torch.no_grad():
        states, _ = model.rnn(model.embedding(tokens))
        expected = model.out(states[torch.arange(5), lengths - 1])
    check_close(logits, expected, "the logits against self.out(state at lengths - 1)", atol=1e-5, rtol=1e-4,
                hint="states, _ = self.rnn(self.embedding(tokens)); classify states[b, lengths[b] - 1] with "
                     "self.out and return the logits (no softmax)")
    # padding must not change a sequence's result: compare with each sequence alone (B = 1), unpadded
    for i in range(5):
        n = int(lengths[i])
        with torch.no_grad():
            alone = model(tokens[i: i + 1, :n], lengths[i: i + 1])
        check_shape(alone, (1, C), f"logits of a batch of one name of length {n} (B = 1)",
                    hint="keep the batch axis: .squeeze() also drops it when B = 1")
        check_close(logits[i: i + 1], alone, f"the logits of name {i} (length {n}) in a padded batch",
                    atol=1e-5, rtol=1e-4,
                    hint="take the state at each sequence's last true position, lengths - 1, not at "
                         "the last padded position")
    # padding with another pad id-0 column changes nothing either
    wider = torch.cat([tokens, torch.zeros(5, 3, dtype=torch.long)], dim=1)
    with torch.no_grad():
        check_close(model(wider, lengths), logits, "the logits after adding padding columns",
                    atol=1e-5, rtol=1e-4)
    # logits, not probabilities
    check_true(not torch.allclose(logits.sum(-1), torch.ones(5), atol=1e-3),
               "the outputs sum to 1 per row: return logits (no softmax); nn.CrossEntropyLoss "
               "applies log-softmax itself")
    # order matters: reversing a sequence changes the logits (a bag of embeddings would not)
    seq = torch.tensor([[2, 3, 4, 5, 6, 7]])
    with torch.no_grad():
        a = model(seq, torch.tensor([6]))
        b = model(seq.flip(1), torch.tensor([6]))
    check_true(bool((a - b).abs().max() > 1e-6),
               "reversing a name does not change the output: the model ignores order. "
               "Feed the embeddings through the RNN.")
    # float64: model.double() must give float64 logits
    model.double()
    try:
        with torch.no_grad():
            logits64 = model(tokens, lengths)
    except RuntimeError as exc:
        check_true(False, f"SurnameRNN in float64 (model.double()) raised: {str(exc).splitlines()[0]}",
                   hint="a tensor made in forward with torch.zeros(...) is float32 on the CPU: give it the "
                        "input's dtype and device, or let nn.RNN start from zeros itself")
    check_true(logits64.dtype == torch.float64, f"SurnameRNN returned {logits64.dtype} logits after model.double()")
    check_close(logits64, logits, "the logits of the float64 model", atol=1e-5, rtol=1e-4)
    model.float()
    # gradients reach the embedding
    model.train()
    model.zero_grad()
    model(tokens, lengths).sum().backward()
    check_true(model.embedding.weight.grad is not None and bool(model.embedding.weight.grad.abs().sum() > 0),
               "no gradient reached the embedding")
    test_differential("SurnameRNN", SurnameRNN)


# ---------------------------------------------------------------- exercise 6: one training step
class _Linear(nn.Module):
    """A tiny stand-in model with the classifier's call signature."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(6, 3)
        self.out = nn.Linear(3, 2)

    def forward(self, tokens, lengths):
        return self.out(self.emb(tokens).sum(1))


def test_train_step(train_step) -> None:
    torch.manual_seed(600)
    cases = [  # (loss function, batch as a tuple or a list)
        (nn.CrossEntropyLoss(label_smoothing=0.1),
         (torch.tensor([[1, 2], [3, 4], [5, 1]]), torch.tensor([2, 2, 2]), torch.tensor([0, 1, 1]))),
        (nn.CrossEntropyLoss(weight=torch.tensor([0.3, 2.0])),
         [torch.tensor([[4, 2, 5]]), torch.tensor([3]), torch.tensor([1])]),          # B = 1, a list
    ]
    for loss_fn, batch in cases:
        B = len(batch[2])
        model = _Linear()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        # a stale gradient left in .grad must not leak into the step
        for p in model.parameters():
            p.grad = torch.full_like(p, 5.0)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        saved = _snapshot(tokens=batch[0], lengths=batch[1], labels=batch[2])
        with torch.no_grad():
            expected_loss = float(loss_fn(model(batch[0], batch[1]), batch[2]))
        ref = _Linear()
        ref.load_state_dict(model.state_dict())
        loss_fn(ref(batch[0], batch[1]), batch[2]).backward()
        try:
            loss = train_step(model, batch, opt, loss_fn)
        except (RuntimeError, ValueError, IndexError) as exc:
            check_true(False, f"train_step raised on a batch of {B} name(s): {str(exc).splitlines()[0]}",
                       hint="keep the batch axis (no .squeeze(): (1, C) logits must stay (1, C))")
        check_type(loss, float, "train_step's return value",
                   hint="return loss.item(): a Python float, so the graph is freed")
        check_close(torch.tensor(loss), torch.tensor(expected_loss), f"the returned loss (B = {B})", atol=1e-6,
                    hint="use the loss_fn you are given (here not plain cross-entropy) and return the loss "
                         "of this batch, before the update")
        _check_unchanged(saved, dict(tokens=batch[0], lengths=batch[1], labels=batch[2]), "train_step")
        for n, p in model.named_parameters():
            g = dict(ref.named_parameters())[n].grad
            check_close(p.detach(), before[n] - 0.1 * g, f"the parameter {n} after one SGD step (B = {B})",
                        atol=1e-6, rtol=1e-5,
                        hint="call optimizer.zero_grad() first, then loss.backward(), then optimizer.step()")
    # repeated steps on one batch, with Adam, lower its loss
    model = _Linear()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = cases[0][1]
    losses = [train_step(model, batch, opt, nn.CrossEntropyLoss()) for _ in range(20)]
    check_true(losses[-1] < losses[0], f"the loss did not go down over 20 Adam steps ({losses[0]:.3f} "
               f"-> {losses[-1]:.3f})")
    test_differential("train_step", train_step)


# ---------------------------------------------------------------- exercise 6 (cont.): trained model
def _held_out(model, vocab, budget) -> tuple[float, float, int, int]:
    """(accuracy, majority-class share, classes predicted, classes) on a test split this module
    loads itself: nothing the notebook defines can change the data or lower the bar."""
    from seqcourse.data.surnames import load_surnames
    from seqcourse.text import LabelledTexts
    from seqcourse.train import evaluate

    split = load_surnames(max_per_language=budget.max_per_language)["test"]
    num_classes = len(split.languages)
    loader = LabelledTexts(split.names, split.labels, vocab).loader(256, shuffle=False)
    device = next(model.parameters()).device
    _, acc, preds, golds = evaluate(model, loader, nn.CrossEntropyLoss(), device)
    majority = float(torch.bincount(golds, minlength=num_classes).max()) / len(golds)
    return acc, majority, len(set(preds.tolist())), num_classes


def test_trained_classifier(namespace: dict) -> None:
    """The notebook's trained ``classifier`` reaches the profile's bar on held-out names. Charged to
    train_step; a shortfall caused by a ``SurnameRNN`` that fails its own tests is charged there
    (see ``judge_experiment``)."""
    from seqcourse.env import get_profile

    guard.verify()
    budget = get_profile().budget("01-rnn-cell")
    model, shortfall = namespace.get("classifier"), None
    if model is None or namespace.get("vocab") is None:
        shortfall = "there is no trained classifier: the training cell stopped before it finished"
    else:
        try:
            acc, majority, predicted, classes = _held_out(model, namespace["vocab"], budget)
        except Exception as exc:   # noqa: BLE001 -- a model that cannot be evaluated falls short
            shortfall = f"evaluating the trained classifier raised {type(exc).__name__}: {exc}".splitlines()[0]
        else:
            if acc < budget.min_test_accuracy:
                shortfall = (f"held-out accuracy {acc:.3f} is below this profile's bar of "
                             f"{budget.min_test_accuracy:.2f}")
            elif acc <= majority + 0.2:
                shortfall = (f"held-out accuracy {acc:.3f} is barely above always guessing the largest "
                             f"class ({majority:.3f})")
            elif predicted < classes // 2:
                shortfall = f"the model predicts only {predicted} of {classes} classes: it has not learned"
    model_class = EXERCISES.learners(namespace, "SurnameRNN").get("SurnameRNN")
    judge_experiment(shortfall, "train_step", lambda: test_train_step(namespace["train_step"]),
                     {"SurnameRNN": lambda: test_surname_rnn(model_class)})


# ---------------------------------------------------------------- differential tests (every exercise)
# Each exercise against its reference on generated inputs within its Graded on: B from 1, T from 1,
# both dtypes, zero, ordinary and saturating magnitudes; the result, the arguments after the call,
# the random state and (float64) the gradients. EXAMPLES says how many inputs each one tries: the
# smallest number that catches every catalogued mistake of the exercise without its hand-written
# tests, with a margin (bench/differential_examples.py measures it).
EXAMPLES = {"bag_of_embeddings": 25, "rnn_cell": 25, "rnn_forward": 25, "to_torch_rnn": 20, "SurnameRNN": 20,
            "train_step": 20}
@st.composite
def _bag_cases(draw):
    B, T, E, V = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(2, 9))
    dtype, g = pick(draw, DTYPES), _gen(draw(seeds()))
    emb = nn.Embedding(V, E, padding_idx=0).to(dtype)
    with torch.no_grad():
        emb.weight.copy_(randn(g, V, E, dtype=dtype, scale=pick(draw, SCALES[1:])))
        emb.weight[0] = 3.0                                    # a pad row that is not zero
    n = random_lengths(g, B, T)
    tokens = torch.randint(1, V, (B, T), generator=g).masked_fill(torch.arange(T)[None] >= n[:, None], 0)
    return Case((tokens, n, emb), f"B={B}, T={T}, E={E}, V={V}, {dtype}, lengths {n.tolist()}")


@st.composite
def _cell_cases(draw, steps: bool):
    B, E, H = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    T = draw(st.integers(1, 6)) if steps else None
    dtype, scale, g = pick(draw, DTYPES), pick(draw, SCALES), _gen(draw(seeds()))
    x = randn(g, *((B, T, E) if steps else (B, E)), dtype=dtype, scale=scale)
    s = randn(g, B, H, dtype=dtype, scale=0.5)
    W, U, b = randn(g, E, H, dtype=dtype, scale=0.7), randn(g, H, H, dtype=dtype, scale=0.7), randn(g, H, dtype=dtype)
    args = with_grad((x, s, W, U, b), dtype)
    return Case(args, f"B={B}, {f'T={T}, ' if steps else ''}E={E}, H={H}, {dtype}, inputs of size {scale:g}",
                grads=tuple(range(5)) if dtype == torch.float64 else ())


@st.composite
def _to_rnn_cases(draw):
    E, H = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dtype, g, trained = pick(draw, DTYPES), _gen(draw(seeds())), draw(st.booleans())
    W, U, b = randn(g, E, H, dtype=dtype), randn(g, H, H, dtype=dtype), randn(g, H, dtype=dtype)
    if trained:                                                # parameters of a model being trained
        W, U, b = (t.requires_grad_() for t in (W, U, b))
    return Case((W, U, b), f"E={E}, H={H}, {dtype}" + (", W, U, b requiring gradients" if trained else ""))


def _built_forward(cls, ref_cls):
    """The forward of ``cls`` built like the reference class under one seed and given its weights."""
    def run(sizes, tokens, n, double, seed):
        state = module_call(ref_cls, sizes, seed).state_dict()
        model = module_call(cls, sizes, seed, state)
        model = (model.double() if double else model).eval()
        return model(tokens, n)
    return run


@st.composite
def _surname_cases(draw):
    V, E, H, C = draw(st.integers(3, 9)), draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(st.integers(2, 5))
    B, T, g = draw(st.integers(1, 4)), draw(st.integers(1, 6)), _gen(draw(seeds()))
    n = random_lengths(g, B, T)
    tokens = torch.randint(1, V, (B, T), generator=g).masked_fill(torch.arange(T)[None] >= n[:, None], 0)
    double = draw(st.booleans())
    return Case(((V, E, H, C), tokens, n, double, draw(seeds())),
                f"SurnameRNN({V}, {E}, {H}, {C}){'.double()' if double else ''} on B={B}, T={T}, lengths {n.tolist()}")


@st.composite
def _step_cases(draw):
    B, g = draw(st.integers(1, 4)), _gen(draw(seeds()))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(draw(seeds()))
        model = _Linear()
    if draw(st.booleans()):                                    # gradients left by earlier code
        for p in model.parameters():
            p.grad = torch.full_like(p, 5.0)
    optimizer = (torch.optim.SGD(model.parameters(), lr=0.1) if draw(st.booleans())
                 else torch.optim.Adam(model.parameters(), lr=0.05))
    loss_fn = pick(draw, [nn.CrossEntropyLoss(), nn.CrossEntropyLoss(label_smoothing=0.1),
                                    nn.CrossEntropyLoss(weight=torch.tensor([0.3, 2.0]))])
    tokens = torch.randint(0, 6, (B, 3), generator=g)
    batch = (tokens, torch.full((B,), 3), torch.randint(0, 2, (B,), generator=g))
    batch = list(batch) if draw(st.booleans()) else batch
    return Case((model, batch, optimizer, loss_fn),
                f"a batch of {B} as a {type(batch).__name__}, {type(optimizer).__name__}, {loss_fn!r}")


def test_differential(exercise: str, answer) -> None:
    """``exercise``'s answer against the reference on generated inputs (see EXAMPLES)."""
    reference = EXERCISES.reference(exercise)
    strategies = {"bag_of_embeddings": _bag_cases(), "rnn_cell": _cell_cases(steps=False),
                  "rnn_forward": _cell_cases(steps=True), "to_torch_rnn": _to_rnn_cases(),
                  "SurnameRNN": _surname_cases(), "train_step": _step_cases()}
    if exercise == "SurnameRNN":
        answer, reference = _built_forward(answer, reference), _built_forward(reference, reference)
    differential(answer, reference, strategies[exercise], exercise, EXAMPLES[exercise])
