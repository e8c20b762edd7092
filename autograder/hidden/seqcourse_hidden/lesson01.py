"""Hidden tests of lesson 01, "Sequences and the RNN cell"."""

from __future__ import annotations

import torch
from torch import nn

from seqcourse.checks import check_close, check_shape, check_true, check_type
from seqcourse.grading import guard
from seqcourse_hidden._isolate import Exercises

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("01-rnn-cell")

# Shapes (B, T, E, H) chosen to catch mistakes that square or equal sizes would hide, plus the
# square case E == H that catches swapped or transposed matrices, and the edge cases B = 1, T = 1.
SHAPES = [(3, 5, 4, 6), (1, 1, 2, 3), (4, 2, 5, 5), (2, 7, 3, 2), (5, 3, 6, 6)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
    for B, T, E in [(4, 6, 3), (1, 1, 5), (3, 9, 2), (6, 4, 4)]:
        V = 11
        emb = nn.Embedding(V, E, padding_idx=0).double()
        with torch.no_grad():
            emb.weight.copy_(torch.randn(V, E, generator=g, dtype=torch.float64))
            emb.weight[0] = 3.0  # a pad vector that is not zero: it must be masked, not summed
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T
        tokens = torch.randint(1, V, (B, T), generator=g)
        mask = torch.arange(T)[None, :] < lengths[:, None]
        tokens = tokens.masked_fill(~mask, 0)
        out = bag_of_embeddings(tokens, lengths, emb)
        check_shape(out, (B, E), f"bag_of_embeddings output for B={B}, T={T}, E={E}")
        expected = torch.stack([emb.weight[tokens[i, : lengths[i]]].mean(0) for i in range(B)])
        check_close(out, expected, "bag_of_embeddings output", atol=1e-9, rtol=1e-7,
                    hint="mean over each sequence's own length, not over T or over the batch")
        # order does not matter: a permutation of the true tokens gives the same vector
        perm = tokens.clone()
        for i in range(B):
            n = int(lengths[i])
            perm[i, :n] = tokens[i, torch.randperm(n, generator=g)]
        check_close(bag_of_embeddings(perm, lengths, emb), out, "bag of a permuted sequence",
                    atol=1e-9, rtol=1e-7)
    # gradients reach the embedding table
    emb = nn.Embedding(7, 3)
    out = bag_of_embeddings(torch.tensor([[1, 2, 0]]), torch.tensor([2]), emb)
    out.sum().backward()
    check_true(emb.weight.grad is not None and bool(emb.weight.grad[1].abs().sum() > 0),
               "no gradient reached the embedding table: keep the computation in torch")


# ---------------------------------------------------------------- exercise 2: the RNN cell
def test_rnn_cell(rnn_cell) -> None:
    for k, (B, _T, E, H) in enumerate(SHAPES):
        g = _gen(200 + k)
        W, U, b = _params(E, H, g)
        x = torch.randn(B, E, generator=g, dtype=torch.float64)
        s = torch.randn(B, H, generator=g, dtype=torch.float64)
        out = rnn_cell(x, s, W, U, b)
        check_shape(out, (B, H), f"rnn_cell output for B={B}, E={E}, H={H}")
        check_true(out.dtype == torch.float64, f"rnn_cell changed the dtype to {out.dtype}: "
                   "keep the inputs' dtype (no float32 constants or conversions)")
        check_close(out, _cell_reference(E, H, W, U, b)(x, s), f"rnn_cell vs nn.RNNCell (case {k})",
                    atol=1e-10, rtol=1e-8)
    # gradients with respect to every input, checked numerically
    g = _gen(250)
    W, U, b = (p.requires_grad_() for p in _params(3, 4, g))
    x = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    check_true(torch.autograd.gradcheck(rnn_cell, (x, s, W, U, b), raise_exception=False),
               "rnn_cell's gradients disagree with finite differences: use differentiable torch "
               "operations only (no .detach(), .item() or NumPy)")


# ---------------------------------------------------------------- exercise 3: unrolling
def test_rnn_forward(rnn_forward) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        g = _gen(300 + k)
        W, U, b = _params(E, H, g)
        x = torch.randn(B, T, E, generator=g, dtype=torch.float64)
        s0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        result = rnn_forward(x, s0, W, U, b)
        check_true(isinstance(result, tuple) and len(result) == 2,
                   "rnn_forward must return a tuple (states, final)")
        states, final = result
        check_shape(states, (B, T, H), f"states for B={B}, T={T}, E={E}, H={H}")
        check_shape(final, (B, H), "final state")
        ref_states, ref_final = _rnn_reference(E, H, W, U, b)(x, s0.unsqueeze(0))
        check_close(states, ref_states, f"states vs nn.RNN (case {k})", atol=1e-10, rtol=1e-8)
        check_close(final, ref_final[0], f"final state vs nn.RNN (case {k})", atol=1e-10, rtol=1e-8)
    # the same weights serve every step: gradients equal nn.RNN's
    g = _gen(350)
    W, U, b = (p.requires_grad_() for p in _params(3, 4, g))
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    s0 = torch.zeros(2, 4, dtype=torch.float64)
    states, _ = rnn_forward(x, s0, W, U, b)
    (states ** 2).sum().backward()
    rnn = _rnn_reference(3, 4, W.detach(), U.detach(), b.detach())
    (rnn(x, s0.unsqueeze(0))[0] ** 2).sum().backward()
    check_true(W.grad is not None and U.grad is not None, "no gradient reached W or U")
    check_close(U.grad, rnn.weight_hh_l0.grad.T, "gradient of U", atol=1e-9, rtol=1e-7,
                hint="backpropagation through time sums U's gradient over every step")
    check_close(W.grad, rnn.weight_ih_l0.grad.T, "gradient of W", atol=1e-9, rtol=1e-7)


# ---------------------------------------------------------------- exercise 4: nn.RNN on copied weights
def test_to_torch_rnn(to_torch_rnn) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        g = _gen(400 + k)
        W, U, b = _params(E, H, g)
        rnn = to_torch_rnn(W, U, b)
        check_type(rnn, nn.RNN, "to_torch_rnn's result")
        check_true(rnn.batch_first, "the nn.RNN must be built with batch_first=True: our tensors are (B, T, E)")
        x = torch.randn(B, T, E, generator=g, dtype=torch.float64)
        s0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        with torch.no_grad():
            out, h_n = rnn(x.to(rnn.weight_ih_l0.dtype), s0.unsqueeze(0).to(rnn.weight_ih_l0.dtype))
        # reference by the definition, step by step
        s, ref = s0, []
        for t in range(T):
            s = torch.tanh(x[:, t] @ W + s @ U + b)
            ref.append(s)
        ref = torch.stack(ref, dim=1)
        check_close(out.double(), ref, f"nn.RNN output vs the cell's definition (case {k})",
                    atol=1e-5, rtol=1e-4,
                    hint="nn.RNN stores weight_ih as (H, E) and computes x @ weight_ih.T + bias_ih + "
                         "h @ weight_hh.T + bias_hh")
        check_close(h_n[0].double(), ref[:, -1], "nn.RNN final state", atol=1e-5, rtol=1e-4)
    # the parameters stay trainable
    rnn = to_torch_rnn(*_params(2, 3, _gen(450)))
    check_true(all(p.requires_grad for p in rnn.parameters()),
               "the nn.RNN's parameters should still require gradients (copy under torch.no_grad())")


# ---------------------------------------------------------------- exercise 5: the classifier
def test_surname_rnn(SurnameRNN) -> None:
    torch.manual_seed(500)
    V, E, H, C = 13, 5, 7, 4
    model = SurnameRNN(V, E, H, C)
    check_type(model, nn.Module, "SurnameRNN(...)")
    check_true(any(isinstance(m, nn.Embedding) for m in model.modules()),
               "SurnameRNN needs an nn.Embedding before the RNN")
    model.eval()
    g = _gen(501)
    lengths = torch.tensor([6, 1, 3, 6, 2])
    tokens = torch.randint(2, V, (5, 6), generator=g)
    tokens = tokens.masked_fill(torch.arange(6)[None, :] >= lengths[:, None], 0)
    with torch.no_grad():
        logits = model(tokens, lengths)
    check_shape(logits, (5, C), "SurnameRNN output (B, C)")
    # padding must not change a sequence's result: compare with each sequence alone, unpadded
    for i in range(5):
        n = int(lengths[i])
        with torch.no_grad():
            alone = model(tokens[i: i + 1, :n], lengths[i: i + 1])
        check_close(logits[i: i + 1], alone, f"logits of sequence {i} (length {n}) in a padded batch",
                    atol=1e-5, rtol=1e-4,
                    hint="take the state at each sequence's last true position, lengths - 1, not at "
                         "the last padded position")
    # padding with another pad id-0 column changes nothing either
    wider = torch.cat([tokens, torch.zeros(5, 3, dtype=torch.long)], dim=1)
    with torch.no_grad():
        check_close(model(wider, lengths), logits, "logits after adding padding columns",
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
    # gradients reach the embedding
    model.train()
    model.zero_grad()
    model(tokens, lengths).sum().backward()
    emb = next(m for m in model.modules() if isinstance(m, nn.Embedding))
    check_true(emb.weight.grad is not None and bool(emb.weight.grad.abs().sum() > 0),
               "no gradient reached the embedding")


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
    model = _Linear()
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = (torch.tensor([[1, 2], [3, 4], [5, 1]]), torch.tensor([2, 2, 2]), torch.tensor([0, 1, 1]))
    # a stale gradient left in .grad must not leak into the step
    for p in model.parameters():
        p.grad = torch.full_like(p, 5.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        expected_loss = float(loss_fn(model(batch[0], batch[1]), batch[2]))
    ref = _Linear()
    ref.load_state_dict(model.state_dict())
    loss_fn(ref(batch[0], batch[1]), batch[2]).backward()
    loss = train_step(model, batch, opt, loss_fn)
    check_type(loss, float, "train_step's return value",
               hint="return loss.item(): a Python float, so the graph is freed")
    check_close(torch.tensor(loss), torch.tensor(expected_loss), "returned loss", atol=1e-6,
                hint="return the loss computed on this batch, before the update")
    for n, p in model.named_parameters():
        g = dict(ref.named_parameters())[n].grad
        check_close(p.detach(), before[n] - 0.1 * g, f"parameter {n} after one SGD step",
                    atol=1e-6, rtol=1e-5,
                    hint="call optimizer.zero_grad() first, then loss.backward(), then optimizer.step()")
    # repeated steps on one batch lower its loss
    losses = [train_step(model, batch, opt, loss_fn) for _ in range(20)]
    check_true(losses[-1] < losses[0], f"the loss did not go down over 20 steps ({losses[0]:.3f} "
               f"-> {losses[-1]:.3f})")


# ---------------------------------------------------------------- exercise 6 (cont.): trained model
def test_trained_classifier(model, vocab) -> None:
    """Held-out accuracy on a test split this function loads itself, against the budget of the
    profile in force (always ci while grading): nothing the notebook defines can lower the bar."""
    from seqcourse.data.surnames import load_surnames
    from seqcourse.env import get_profile
    from seqcourse.text import LabelledTexts
    from seqcourse.train import evaluate

    guard.verify()
    budget = get_profile().budget("01-rnn-cell")
    split = load_surnames(max_per_language=budget.max_per_language)["test"]
    num_classes = len(split.languages)
    loader = LabelledTexts(split.names, split.labels, vocab).loader(256, shuffle=False)
    device = next(model.parameters()).device
    _, acc, preds, golds = evaluate(model, loader, nn.CrossEntropyLoss(), device)
    majority = float(torch.bincount(golds, minlength=num_classes).max()) / len(golds)
    check_true(acc >= budget.min_val_accuracy,
               f"held-out accuracy {acc:.3f} is below this profile's bar of "
               f"{budget.min_val_accuracy:.2f}")
    check_true(acc > majority + 0.2, f"held-out accuracy {acc:.3f} is barely above always "
               f"guessing the largest class ({majority:.3f})")
    check_true(len(set(preds.tolist())) >= num_classes // 2,
               "the model predicts only a few classes: it has not learned")
