"""Hidden tests of lesson 05, "Seq2Seq encoder-decoder"."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from seqcourse.checks import check_close, check_shape, check_true, check_type
from seqcourse.grading import guard
from seqcourse_hidden._isolate import Exercises

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("05-seq2seq")

BOS, EOS = 2, 3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(B: int, T: int, V: int, g: torch.Generator):
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    tokens = torch.randint(4, V, (B, T), generator=g)
    tokens[torch.arange(T)[None] >= lengths[:, None]] = 0
    return tokens, lengths


# ---------------------------------------------------------------- exercise 1: teacher forcing
def test_teacher_forcing(teacher_forcing) -> None:
    for k, (B, T) in enumerate([(4, 6), (1, 1), (3, 2), (5, 9)]):
        g = _gen(5000 + k)
        tgt, lengths = _batch(B, T, 14, g)
        dec_in, dec_out = teacher_forcing(tgt, lengths, BOS, EOS)
        check_shape(dec_in, (B, T + 1), f"decoder inputs for B={B}, T={T}", hint="one more step than the target")
        check_shape(dec_out, (B, T + 1), "decoder targets")
        for b in range(B):
            n = int(lengths[b])
            y = tgt[b, :n].tolist()
            check_true(dec_in[b, :n + 1].tolist() == [BOS] + y,
                       f"row {b}: decoder inputs {dec_in[b].tolist()} should start [<bos>, y_1 .. y_n] = {[BOS] + y}",
                       hint="the decoder reads the previous true token: <bos> first")
            check_true(dec_out[b, :n + 1].tolist() == y + [EOS],
                       f"row {b}: decoder targets {dec_out[b].tolist()} should start [y_1 .. y_n, <eos>] = {y + [EOS]}",
                       hint="<eos> goes right after each row's last real token, not at the end of the padding")
            check_true(bool((dec_out[b, n + 1:] == 0).all()) and bool((dec_in[b, n + 1:] == 0).all()),
                       f"row {b}: positions after <eos> must be padding (0)")
        check_true(dec_in.dtype == torch.long and dec_out.dtype == torch.long, "ids stay int64")
    tgt = torch.tensor([[5, 6]])
    teacher_forcing(tgt, torch.tensor([2]), BOS, EOS)
    check_true(tgt.tolist() == [[5, 6]], "teacher_forcing changed its input in place")


# ---------------------------------------------------------------- exercise 2: the model
def _reference_encode(model, src, src_len):
    packed = pack_padded_sequence(model.src_embedding(src), src_len, batch_first=True, enforce_sorted=False)
    _, h_n = model.encoder(packed)
    context = torch.cat([h_n[0], h_n[1]], dim=-1)
    return context, torch.tanh(model.bridge(context)).unsqueeze(0)


def _reference_step(model, prev, state, context):
    out, state = model.decoder(torch.cat([model.tgt_embedding(prev), context], -1).unsqueeze(1), state)
    return model.out(torch.cat([out[:, 0], context], -1)), state


def test_seq2seq(Seq2Seq) -> None:
    for k, (B, S, T, E, H) in enumerate([(4, 7, 5, 6, 5), (1, 1, 1, 3, 2), (3, 4, 6, 4, 4)]):
        g = _gen(5100 + k)
        torch.manual_seed(5100 + k)
        model = Seq2Seq(15, 13, E, H).double().eval()
        src, src_len = _batch(B, S, 15, g)
        dec_in, _ = _batch(B, T, 13, g)
        with torch.no_grad():
            context, state = model.encode(src, src_len)
            rc, rs = _reference_encode(model, src, src_len)
            check_shape(context, (B, 2 * H), f"context for B={B}, H={H}", hint="[forward; backward] final states")
            check_shape(state, (1, B, H), "first decoder state", hint="tanh(bridge(context)), with a layer axis")
            check_close(context, rc, f"context (case {k})", atol=1e-10, rtol=1e-8,
                        hint="pack the source so each row's final states are at its true length")
            check_close(state, rs, f"first decoder state (case {k})", atol=1e-10, rtol=1e-8)
            prev = dec_in[:, 0]
            logits, new_state = model.step(prev, rs, rc)
            r_logits, r_state = _reference_step(model, prev, rs, rc)
            check_shape(logits, (B, 13), "step logits")
            check_close(logits, r_logits, f"step logits (case {k})", atol=1e-10, rtol=1e-8,
                        hint="decoder input [embedding(prev); context]; output layer reads [output; context]")
            check_close(new_state, r_state, f"step state (case {k})", atol=1e-10, rtol=1e-8)
            full = model(src, src_len, dec_in)
            check_shape(full, (B, T, 13), "forward's logits")
            state, expected = rs, []
            for t in range(T):
                lt, state = _reference_step(model, dec_in[:, t], state, rc)
                expected.append(lt)
            check_close(full, torch.stack(expected, 1), f"teacher-forced logits (case {k})", atol=1e-10, rtol=1e-8,
                        hint="feed dec_in[:, t] at step t and carry the decoder state")
            # padding in the source changes nothing
            wider = torch.cat([src, torch.zeros(B, 3, dtype=torch.long)], dim=1)
            check_close(model.encode(wider, src_len)[0], rc, "context with extra padding", atol=1e-10, rtol=1e-8)
    model = Seq2Seq(9, 8, 3, 4).double()
    src, src_len = torch.tensor([[4, 5, 6]]), torch.tensor([3])
    model.zero_grad()
    model(src, src_len, torch.tensor([[BOS, 4]])).sum().backward()
    check_true(model.src_embedding.weight.grad is not None and bool(model.src_embedding.weight.grad.abs().sum() > 0),
               "no gradient reached the source embedding: the decoder must use the encoder's context")


# ---------------------------------------------------------------- exercise 3: the loss
def test_masked_cross_entropy(masked_cross_entropy) -> None:
    for k, (B, T, V) in enumerate([(3, 5, 7), (1, 1, 6), (4, 6, 9)]):
        g = _gen(5200 + k)
        logits = torch.randn(B, T, V, generator=g, dtype=torch.float64, requires_grad=True)
        targets, lengths = _batch(B, T, V, g)
        loss = masked_cross_entropy(logits, targets, 0)
        check_true(isinstance(loss, torch.Tensor) and loss.dim() == 0, "the loss is a scalar tensor")
        real = targets != 0
        expected = nn.functional.cross_entropy(logits[real], targets[real])
        check_close(loss, expected, f"masked loss (case {k})", atol=1e-10, rtol=1e-8,
                    hint="average over the real (non-padding) tokens of the whole batch")
        loss.backward()
        check_true(bool(logits.grad[~real].abs().max() == 0) if bool((~real).any()) else True,
                   "padding positions must get no gradient")
        # changing logits at padded positions changes nothing
        noisy = logits.detach().clone()
        noisy[~real] += 100
        check_close(masked_cross_entropy(noisy, targets, 0), expected, "loss with other logits at padding", atol=1e-10)
    logits = torch.randn(2, 3, 5, dtype=torch.float64)
    targets = torch.tensor([[1, 2, 4], [4, 4, 4]])
    check_close(masked_cross_entropy(logits, targets, pad_id=4),
                nn.functional.cross_entropy(logits[targets != 4], targets[targets != 4]),
                "loss with pad_id=4", atol=1e-10, hint="use the pad_id you are given")


# ---------------------------------------------------------------- stub models for decoding
class TableModel(nn.Module):
    """A decoder whose next-token log-probabilities depend on the previous token and the step:
    ``table[step, prev]``. Its state counts steps. Small enough to search exhaustively."""

    def __init__(self, V: int, steps: int, seed: int, sharp: float = 2.0):
        super().__init__()
        g = _gen(seed)
        self.table = torch.randn(steps + 1, V, V, generator=g, dtype=torch.float64) * sharp
        self.table[..., 0] = -1e4                # never padding
        self.table[..., BOS] = -1e4              # never <bos>
        self.dummy = nn.Parameter(torch.zeros(1))

    def encode(self, src, src_len):
        return torch.zeros(src.shape[0], 1, dtype=torch.float64), torch.zeros(src.shape[0], dtype=torch.long)

    def step(self, prev, state, context):
        return self.table[state.clamp(max=self.table.shape[0] - 1), prev], state + 1

    def forward(self, src, src_len, dec_in):
        context, state = self.encode(src, src_len)
        out = []
        for t in range(dec_in.shape[1]):
            logits, state = self.step(dec_in[:, t], state, context)
            out.append(logits)
        return torch.stack(out, 1)


def _crafted() -> TableModel:
    """Greedy takes a (p .5) then a flat step (1/9 each) then <eos>: .056 in all. A width-2 beam
    keeps a and b (p .3); b's two continuations (.15 each) push every a-path out, and what follows
    them is flat again, so the beam ends at .017, below greedy."""
    V = 16
    model = TableModel(V, 3, 0)
    table = torch.full((4, V, V), -1e4, dtype=torch.float64)
    a, b, c = 4, 5, 6

    def put(t, prev, probs):
        for tok, p in probs.items():
            table[t, prev, tok] = math.log(p)

    put(0, BOS, {a: 0.5, b: 0.3, c: 0.2})
    put(1, a, {tok: 1 / 9 for tok in range(7, 16)})
    put(1, b, {8: 0.5, 9: 0.5})
    put(1, c, {EOS: 1.0})
    for prev in range(7, 16):
        put(2, prev, {EOS: 1.0} if prev == 7 else {tok: 1 / 9 for tok in range(7, 16)})
    model.table = table
    return model


def _logp(model, tokens, max_len):
    lp = torch.log_softmax(model.table, dim=-1)
    prev, total = BOS, 0.0
    seq = list(tokens) + ([EOS] if len(tokens) < max_len else [])
    for t, tok in enumerate(seq):
        total += float(lp[min(t, lp.shape[0] - 1), prev, tok])
        prev = tok
    return total, len(seq)


def _greedy_reference(model, max_len):
    prev, out = BOS, []
    for t in range(max_len):
        tok = int(model.table[min(t, model.table.shape[0] - 1), prev].argmax())
        if tok == EOS:
            break
        out.append(tok)
        prev = tok
    return out


# ---------------------------------------------------------------- exercise 4: greedy decoding
def test_greedy_decode(greedy_decode) -> None:
    src, src_len = torch.tensor([[5, 6]]), torch.tensor([2])
    for seed in range(6):
        model = TableModel(7, 6, 5300 + seed)
        out = greedy_decode(model, src, src_len, BOS, EOS, 6)
        check_type(out, list, "greedy_decode's result")
        check_true(out == [_greedy_reference(model, 6)], f"greedy output {out} should be "
                   f"{[_greedy_reference(model, 6)]} (seed {seed})",
                   hint="take the argmax at every step and feed it back; stop at <eos>, leave it out")
    # rows end at different steps, in one batch; the model is a real batch of three tables
    models = [TableModel(7, 6, s) for s in (5310, 5311, 5312)]

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(1))

        def encode(self, src, src_len):
            return torch.zeros(3, 1), torch.zeros(3, dtype=torch.long)

        def step(self, prev, state, context):
            return torch.stack([m.table[min(int(state[i]), 6), int(prev[i])] for i, m in enumerate(models)]), state + 1

    out = greedy_decode(Stack(), torch.zeros(3, 2, dtype=torch.long), torch.tensor([2, 2, 2]), BOS, EOS, 6)
    expected = [_greedy_reference(m, 6) for m in models]
    check_true(out == expected, f"batch of three: got {out}, expected {expected}",
               hint="each row stops at its own <eos>; nothing after it")
    # a model that never says <eos> stops at max_len
    never = TableModel(7, 9, 5320)
    never.table[..., EOS] = -1e4
    out = greedy_decode(never, src, src_len, BOS, EOS, 4)
    check_true(len(out[0]) == 4, f"with no <eos>, decoding stops after max_len=4 tokens, got {len(out[0])}")


# ---------------------------------------------------------------- exercise 5: beam search
def test_beam_search(beam_search, greedy_decode, Seq2Seq, sequence_log_prob) -> None:
    src, src_len = torch.tensor([[5, 6]]), torch.tensor([2])
    V, L = 6, 4
    wins = 0
    for seed in range(8):
        model = TableModel(V, L, 5400 + seed, sharp=1.5)
        tokens, score = beam_search(model, src, src_len, BOS, EOS, 3, L)
        check_type(tokens, list, "beam_search's tokens")
        check_true(EOS not in tokens and BOS not in tokens, f"the result {tokens} must not contain <bos>/<eos>")
        logp, n = _logp(model, tokens, L)
        check_true(math.isclose(score, logp, abs_tol=1e-6),
                   f"the score {score:.5f} is not the log-probability {logp:.5f} of the returned tokens",
                   hint="add the log_softmax of every chosen token, <eos> included")
        greedy = _greedy_reference(model, L)
        g_logp, _ = _logp(model, greedy, L)
        check_true(score >= g_logp - 1e-9, f"beam search ({score:.4f}) scored below greedy ({g_logp:.4f}) "
                   f"for seed {seed}", hint="keep the greedy hypothesis as a candidate")
        wins += score > g_logp + 1e-9
        # width 1 is greedy
        one, _ = beam_search(model, src, src_len, BOS, EOS, 1, L)
        check_true(one == greedy, f"beam_size=1 gave {one}, greedy gives {greedy}")
        # a wide beam finds the exact best sequence (all sequences of up to L tokens)
        allowed = [1] + list(range(4, V))          # every id but padding, <bos> and <eos>
        best = max((list(seq) for n_tok in range(L + 1) for seq in itertools.product(allowed, repeat=n_tok)),
                   key=lambda s: _logp(model, s, L)[0])
        wide, wide_score = beam_search(model, src, src_len, BOS, EOS, V ** L, L)
        check_true(math.isclose(wide_score, _logp(model, best, L)[0], abs_tol=1e-6),
                   f"an exhaustive beam found {wide} ({wide_score:.4f}); the best sequence is {best} "
                   f"({_logp(model, best, L)[0]:.4f})",
                   hint="keep the beam_size best candidates over all beams' extensions, and move finished "
                        "ones (ending in <eos>) out of the beam")
    check_true(wins > 0, "beam search never beat greedy on 8 models: it is not searching")
    # a model where a width-2 beam prunes the greedy path: the result must still not be worse
    crafted = _crafted()
    tokens, score = beam_search(crafted, src, src_len, BOS, EOS, 2, 3)
    g_logp, _ = _logp(crafted, _greedy_reference(crafted, 3), 3)
    check_true(score >= g_logp - 1e-9, f"beam search (width 2) returned {tokens} scoring {score:.4f}, below "
               f"greedy's {g_logp:.4f}: the beam pruned the greedy path",
               hint="beam search alone does not guarantee it: add the greedy hypothesis to the candidates")
    # length normalisation: rank and score by log p / length ** alpha (length counts <eos>)
    allowed = [1] + list(range(4, V))
    every = [list(seq) for n_tok in range(L + 1) for seq in itertools.product(allowed, repeat=n_tok)]
    for seed in range(4):
        model = TableModel(V, L, 5450 + seed, sharp=1.5)
        for alpha in (1.0, 0.6):
            def normalised(seq, model=model, alpha=alpha):
                logp, n = _logp(model, seq, L)
                return logp / n ** alpha
            best = max(every, key=normalised)
            tokens, score = beam_search(model, src, src_len, BOS, EOS, V ** L, L, alpha=alpha)
            logp, n = _logp(model, tokens, L)
            check_true(math.isclose(score, logp / n ** alpha, abs_tol=1e-6),
                       f"with alpha={alpha} the score {score:.5f} should be log p / length ** alpha = "
                       f"{logp / n ** alpha:.5f} (length {n}, counting <eos>)",
                       hint="divide by len(tokens + [<eos>]) ** alpha")
            check_true(math.isclose(score, normalised(best), abs_tol=1e-6),
                       f"with alpha={alpha} an exhaustive beam should find the best normalised score "
                       f"{normalised(best):.5f} ({best}), got {score:.5f} ({tokens})",
                       hint="rank the finished hypotheses by the normalised score too")
    # on a real (random) Seq2Seq the result never scores below greedy either
    torch.manual_seed(5460)
    s2s = Seq2Seq(10, 9, 4, 8).eval()
    for i in range(5):
        s = torch.randint(4, 10, (1, 5), generator=_gen(5461 + i))
        ln = torch.tensor([5])
        tokens, score = beam_search(s2s, s, ln, BOS, EOS, 3, 6)
        g = greedy_decode(s2s, s, ln, BOS, EOS, 6)[0]
        g_score = sequence_log_prob(s2s, s, ln, g, BOS, EOS, 6)[0]
        check_true(score >= g_score - 1e-5, f"on a Seq2Seq, beam ({score:.4f}) < greedy ({g_score:.4f})")


# ---------------------------------------------------------------- the trained model
def held_out_exact_match(model, budget, source_vocab, target_vocab) -> float:
    """Exact match of ``model`` on the test days of ``budget`` (drawn here), with greedy decoding
    written here, through the model's ``encode``/``step`` only (lessons 05 and 06 share it)."""
    from seqcourse.data.dates import make_dates
    from seqcourse.text import Pairs

    test = make_dates(budget.days, budget.per_day, seed=0)["test"]
    data = Pairs([(e.source, e.target) for e in test], source_vocab, target_vocab)
    src, src_len, tgt, tgt_len = Pairs.collate([data[i] for i in range(len(data))])
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        memory, state = model.encode(src.to(device), src_len)
        prev = torch.full((len(data),), target_vocab.bos_id, dtype=torch.long, device=device)
        steps = []
        for _ in range(12):
            logits, state = model.step(prev, state, memory)
            prev = logits.argmax(-1)
            steps.append(prev.cpu())
    rows = torch.stack(steps, 1).tolist()
    preds = [r[:r.index(target_vocab.eos_id)] if target_vocab.eos_id in r else r for r in rows]
    return sum(p == tgt[i, :tgt_len[i]].tolist() for i, p in enumerate(preds)) / len(preds)


def test_trained_translator(model, source_vocab, target_vocab) -> None:
    """Exact match on test days this module draws itself, with its own greedy decoding."""
    from seqcourse.env import get_profile

    guard.verify()
    budget = get_profile().budget("05-seq2seq")
    acc = held_out_exact_match(model, budget, source_vocab, target_vocab)
    check_true(acc >= budget.min_exact_match,
               f"exact match on held-out dates is {acc:.3f}, below this profile's bar of {budget.min_exact_match}")
