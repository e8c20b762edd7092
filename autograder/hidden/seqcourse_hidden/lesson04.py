"""Hidden tests of lesson 04, "Deep and bidirectional RNNs"."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqcourse.checks import check_close, check_shape, check_true, check_type
from seqcourse.grading import guard
from seqcourse_hidden._isolate import Exercises

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("04-deep-rnn")

# (B, T, E, H): E != H catches transposes, B = 1 and T = 1 the edge cases.
SHAPES = [(4, 6, 3, 5), (1, 1, 2, 3), (5, 7, 4, 4), (3, 4, 6, 2)]
TOL = dict(atol=1e-10, rtol=1e-8)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _lengths(B: int, T: int, g: torch.Generator) -> torch.Tensor:
    """Random lengths in 1..T, unsorted, with T and (when B > 2) 1 among them."""
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[B // 2] = T
    if B > 2:
        lengths[-1] = 1
    return lengths


def _torch_packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor):
    """The reference: nn.LSTM over a packed batch, unpacked to (B, T, D*H)."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h, c) = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, (h, c)


def _randomise(module: nn.Module, g: torch.Generator, scale: float = 0.5) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def _cell_from(lstm: nn.LSTM, cell_class, layer: int = 0, reverse: bool = False):
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    cell = cell_class(lstm.input_size if layer == 0 else lstm.hidden_size * 2, lstm.hidden_size).double()
    cell.load_state_dict({n: getattr(lstm, n + suffix) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    return cell


# ---------------------------------------------------------------- exercise 1: one masked direction
def test_lstm_layer(length_mask, lstm_layer, LSTMCellScratch) -> None:
    mask = length_mask(torch.tensor([3, 1, 4]), 5)
    check_type(mask, torch.Tensor, "length_mask's result")
    check_true(mask.dtype == torch.bool, f"length_mask returns a bool tensor, got {mask.dtype}")
    check_true(mask.tolist() == [[True] * 3 + [False] * 2, [True] + [False] * 4, [True] * 4 + [False]],
               f"length_mask([3, 1, 4], 5) gave {mask.int().tolist()}",
               hint="position t is real when t < length")
    check_true(not length_mask(torch.tensor([2]), 3).requires_grad, "the mask needs no gradient")
    for k, (B, T, E, H) in enumerate(SHAPES):
        g = _gen(4000 + k)
        lstm = _randomise(nn.LSTM(E, H, batch_first=True, bidirectional=True).double(), g)
        x = torch.randn(B, T, E, generator=g, dtype=torch.float64)
        lengths = _lengths(B, T, g)
        ref_out, (ref_h, ref_c) = _torch_packed(lstm, x, lengths)
        for direction, reverse in enumerate((False, True)):
            cell = _cell_from(lstm, LSTMCellScratch, reverse=reverse)
            result = lstm_layer(cell, x, lengths, reverse=reverse)
            check_true(isinstance(result, tuple) and len(result) == 2,
                       "lstm_layer returns (outputs, (h, c))")
            out, (h, c) = result
            which = "backward" if reverse else "forward"
            check_shape(out, (B, T, H), f"{which} outputs for B={B}, T={T}")
            check_close(out, ref_out[..., direction * H:(direction + 1) * H],
                        f"{which} outputs vs packed nn.LSTM (case {k}, lengths {lengths.tolist()})",
                        **TOL, hint=("the backward direction starts at each sequence's last real "
                                     "position, lengths - 1, not at T - 1; padded outputs are 0")
                        if reverse else "padded positions must output 0 and leave the state alone")
            check_close(h, ref_h[direction], f"{which} final h (case {k})", **TOL,
                        hint="the final state is the one after each sequence's last real step")
            check_close(c, ref_c[direction], f"{which} final c (case {k})", **TOL)
        # changing what sits in the padding changes nothing
        noisy = x.clone()
        noisy[~length_mask(lengths, T)] = 100.0
        cell = _cell_from(lstm, LSTMCellScratch, reverse=True)
        out, (h, _) = lstm_layer(cell, noisy, lengths, reverse=True)
        check_close(h, ref_h[1], f"backward final h with garbage in the padding (case {k})", **TOL,
                    hint="padded steps must not update the state")
    # gradients flow to the inputs at real positions only
    g = _gen(4050)
    cell = _randomise(LSTMCellScratch(2, 3).double(), g)
    x = torch.randn(2, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    out, (h, _) = lstm_layer(cell, x, torch.tensor([4, 2]), reverse=True)
    (out.sum() + h.sum()).backward()
    check_true(bool(x.grad[1, 2:].abs().max() == 0), "gradient reached padded inputs: they leak")
    check_true(bool(x.grad[1, :2].abs().max() > 0), "no gradient reached the real inputs")


# ---------------------------------------------------------------- exercise 2: stacked, bidirectional
def test_stacked_bilstm(StackedBiLSTM, load_torch_lstm) -> None:
    configs = [(2, True), (1, False), (3, True), (2, False), (1, True)]
    for k, ((B, T, E, H), (L, bi)) in enumerate(zip(SHAPES + [(2, 3, 3, 3)], configs, strict=True)):
        g = _gen(4100 + k)
        lstm = _randomise(nn.LSTM(E, H, num_layers=L, bidirectional=bi, batch_first=True).double(), g)
        model = StackedBiLSTM(E, H, num_layers=L, bidirectional=bi).double()
        D = 2 if bi else 1
        check_true(len(list(model.cells)) == L * D,
                   f"{L} layers x {D} directions need {L * D} cells, found {len(list(model.cells))}")
        names = {n: tuple(p.shape) for n, p in model.named_parameters()}
        want = {f"cells.{i}.{w}": tuple(getattr(lstm, f"{w}_l{i // D}{'_reverse' if i % D else ''}").shape)
                for i in range(L * D) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        check_true(names == want, f"parameters {names} should be {want}",
                   hint="layer l > 0 reads both directions of layer l - 1: input size D * H")
        load_torch_lstm(model, lstm)
        x = torch.randn(B, T, E, generator=g, dtype=torch.float64)
        lengths = _lengths(B, T, g)
        out, (h, c) = model(x, lengths)
        ref_out, (ref_h, ref_c) = _torch_packed(lstm, x, lengths)
        label = f"(case {k}: {L} layers, bidirectional={bi}, lengths {lengths.tolist()})"
        check_shape(out, (B, T, D * H), f"outputs {label}")
        check_shape(h, (L * D, B, H), f"h_n {label}", hint="h_n is (num_layers * D, B, H), layer by layer")
        check_close(out, ref_out, f"outputs vs nn.LSTM {label}", **TOL,
                    hint="each layer after the first reads [forward; backward] of the layer below")
        check_close(h, ref_h, f"h_n vs nn.LSTM {label}", **TOL,
                    hint="order h_n as layer 0 forward, layer 0 backward, layer 1 forward, ...")
        check_close(c, ref_c, f"c_n vs nn.LSTM {label}", **TOL)
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    model = _randomise(StackedBiLSTM(2, 2).double(), _gen(4150))
    lengths = torch.tensor([3, 2])
    check_true(torch.autograd.gradcheck(lambda x: model(x, lengths)[0], (x,), raise_exception=False),
               "gradients through StackedBiLSTM disagree with finite differences")


# ---------------------------------------------------------------- exercise 3: packing
def test_packed_lstm(packed_lstm) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        g = _gen(4200 + k)
        lstm = _randomise(nn.LSTM(E, H, num_layers=2, bidirectional=True, batch_first=True).double(), g)
        x = torch.randn(B, T + 2, E, generator=g, dtype=torch.float64)  # two all-padding columns
        lengths = _lengths(B, T, g)
        out, (h, c) = packed_lstm(lstm, x, lengths)
        check_shape(out, (B, T + 2, 2 * H), f"outputs for B={B}, T={T + 2}",
                    hint="pad back to the input's length: pad_packed_sequence(..., total_length=T)")
        pad = torch.arange(T + 2)[None] >= lengths[:, None]
        check_true(bool(out[pad].abs().max() == 0) if bool(pad.any()) else True,
                   "outputs at padded positions must be exactly 0")
        for i in range(B):  # each sequence alone, no padding at all
            n = int(lengths[i])
            alone_out, (alone_h, alone_c) = lstm(x[i:i + 1, :n])
            check_close(out[i:i + 1, :n], alone_out, f"outputs of sequence {i} (length {n}) vs run alone",
                        **TOL, hint="pack the batch so that padding is never read")
            check_close(h[:, i], alone_h[:, 0], f"h_n of sequence {i} vs run alone", **TOL)
            check_close(c[:, i], alone_c[:, 0], f"c_n of sequence {i} vs run alone", **TOL)
        check_true(h.shape == (4, B, H), f"h_n should be (4, B, H), got {tuple(h.shape)}",
                   hint="keep the original batch order: enforce_sorted=False does that")
    # a batch_first=False LSTM is not what the lesson uses; a length tensor on the GPU is: lengths
    # may be any integer tensor
    lstm = nn.LSTM(2, 3, batch_first=True).double()
    out, _ = packed_lstm(lstm, torch.randn(2, 3, 2, dtype=torch.float64), torch.tensor([1, 3], dtype=torch.int32))
    check_shape(out, (2, 3, 3), "outputs with int32 lengths")


# ---------------------------------------------------------------- exercise 4: the classifier
def test_surname_bilstm(SurnameBiLSTM) -> None:
    torch.manual_seed(4300)
    model = SurnameBiLSTM(vocab_size=12, emb_size=5, hid_size=6, num_classes=4, dropout=0.0)
    lstm = getattr(model, "lstm", None)
    check_true(isinstance(lstm, nn.LSTM), "the model keeps its nn.LSTM as self.lstm")
    check_true(lstm.num_layers == 2 and lstm.bidirectional and lstm.batch_first,
               "self.lstm is nn.LSTM(..., num_layers=2, bidirectional=True, batch_first=True)")
    check_true(isinstance(getattr(model, "out", None), nn.Linear) and model.out.in_features == 12,
               "self.out is nn.Linear(2 * hid_size, num_classes): it reads both directions")
    model.eval()
    g = _gen(4301)
    tokens = torch.randint(2, 12, (6, 7), generator=g)
    lengths = torch.tensor([7, 3, 1, 5, 2, 7])
    tokens[torch.arange(7)[None] >= lengths[:, None]] = 0
    with torch.no_grad():
        logits = model(tokens, lengths)
        check_shape(logits, (6, 4), "SurnameBiLSTM output")
        emb = model.embedding(tokens)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = model.lstm(packed)
        expected = model.out(torch.cat([h[-2], h[-1]], dim=-1))
        check_close(logits, expected, "logits vs out([h_n[-2]; h_n[-1]]) of the packed LSTM",
                    atol=1e-5, rtol=1e-4,
                    hint="use the top layer's final states (h_n[-2] forward, h_n[-1] backward), "
                         "not layer 0's (h_n[0], h_n[1]) nor outputs[:, -1]")
        for i in range(6):
            n = int(lengths[i])
            alone = model(tokens[i:i + 1, :n], lengths[i:i + 1])
            check_close(logits[i:i + 1], alone, f"logits of name {i} (length {n}) vs alone", atol=1e-5,
                        rtol=1e-4, hint="padding must not reach the result: pack the batch")
        noisy = tokens.clone()
        noisy[tokens == 0] = 5
        check_close(model(noisy, lengths), logits, "logits with other ids in the padding", atol=1e-5,
                    rtol=1e-4)
    check_true(not torch.allclose(logits.sum(-1), torch.ones(6), atol=1e-3),
               "the outputs sum to 1: return logits; nn.CrossEntropyLoss applies log-softmax")
    model.train()
    model.zero_grad()
    model(tokens, lengths).sum().backward()
    check_true(model.embedding.weight.grad is not None and bool(model.embedding.weight.grad.abs().sum() > 0),
               "no gradient reached the embedding")
    drop = SurnameBiLSTM(vocab_size=12, emb_size=5, hid_size=6, num_classes=4, dropout=0.5)
    check_true(drop.lstm.dropout == 0.5, "pass dropout to nn.LSTM (between its layers)")


class _BaselineRNN(nn.Module):
    """Lesson 01's classifier: an RNN read left to right, the state at the last real position."""

    def __init__(self, vocab_size, emb_size, hid_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=0)
        self.rnn = nn.RNN(emb_size, hid_size, batch_first=True)
        self.out = nn.Linear(hid_size, num_classes)

    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        return self.out(states[torch.arange(tokens.shape[0]), lengths - 1])


def _step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def trained_accuracies(SurnameBiLSTM, seed: int = 0) -> tuple[float, float]:
    """Train lesson 01's RNN (with lesson 01's budget) and the learner's BiLSTM (this lesson's)
    on the same split; return both held-out test accuracies."""
    from seqcourse.data.surnames import load_surnames
    from seqcourse.env import get_profile, seed_everything
    from seqcourse.text import CharVocab, LabelledTexts
    from seqcourse.train import evaluate, fit

    profile = get_profile()
    b1, b4 = profile.budget("01-rnn-cell"), profile.budget("04-deep-rnn")
    splits = load_surnames(max_per_language=b4.max_per_language)
    vocab = CharVocab.from_texts(splits["train"].names)
    data = {k: LabelledTexts(s.names, s.labels, vocab) for k, s in splits.items()}
    C = len(splits["train"].languages)
    accuracies = []
    for make, b in ((lambda: _BaselineRNN(len(vocab), b1.emb_size, b1.hid_size, C), b1),
                    (lambda: SurnameBiLSTM(len(vocab), b4.emb_size, b4.hid_size, C, b4.dropout), b4)):
        seed_everything(seed)
        model = make()
        opt = torch.optim.Adam(model.parameters(), lr=b.lr)
        fit(model, data["train"].loader(b.batch_size, shuffle=True, seed=seed),
            data["val"].loader(256, shuffle=False), opt, nn.CrossEntropyLoss(), _step, b.epochs,
            progress=False)
        accuracies.append(evaluate(model, data["test"].loader(256, shuffle=False), nn.CrossEntropyLoss())[1])
    return accuracies[0], accuracies[1]


def test_bilstm_beats_rnn(SurnameBiLSTM) -> None:
    """Retrains both models here, on a split and with a training step of its own."""
    from seqcourse.env import get_profile

    guard.verify()
    margin = get_profile().budget("04-deep-rnn").margin
    rnn_acc, bilstm_acc = trained_accuracies(SurnameBiLSTM, seed=1)
    check_true(bilstm_acc >= rnn_acc + margin,
               f"retrained on the grader's side, your BiLSTM reached {bilstm_acc:.3f} against lesson "
               f"01's RNN at {rnn_acc:.3f}; it should win by {margin:.2f}")


# ---------------------------------------------------------------- exercise 5: sampling
def _draws(sample_next, logits, n, **kw):
    out = sample_next(logits.expand(n, -1).clone(), generator=_gen(4400), **kw)
    check_shape(out, (n,), "sample_next's result")
    check_true(out.dtype == torch.long, f"sample_next returns int64 ids, got {out.dtype}")
    return torch.bincount(out, minlength=logits.shape[-1]).double() / n


def test_sample_next(sample_next) -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]])
    n = 40_000
    for temperature in (1.0, 0.5, 2.0):
        freq = _draws(sample_next, logits, n, temperature=temperature)
        want = torch.softmax(logits[0].double() / temperature, dim=0)
        tv = float((freq - want).abs().sum() / 2)
        check_true(tv < 0.015, f"at temperature {temperature} the sampled frequencies "
                   f"{[round(v, 3) for v in freq.tolist()]} are far from softmax(logits / T) = "
                   f"{[round(v, 3) for v in want.tolist()]}",
                   hint="divide the logits by the temperature before the softmax")
    for top_k in (1, 2, 4):
        freq = _draws(sample_next, logits, n, temperature=1.5, top_k=top_k)
        want = torch.softmax(logits[0, :top_k].double() / 1.5, dim=0)
        check_true(bool(freq[top_k:].sum() == 0), f"with top_k={top_k} only the {top_k} largest logits "
                   f"may be drawn; frequencies {[round(v, 3) for v in freq.tolist()]}")
        tv = float((freq[:top_k] - want).abs().sum() / 2)
        check_true(tv < 0.015, f"with top_k={top_k} the kept tokens should keep their relative odds",
                   hint="set the other logits to -inf, then apply softmax")
    freq = _draws(sample_next, logits, 1000, top_k=50)
    check_true(bool((freq > 0).sum() >= 4), "top_k larger than the vocabulary keeps every token")
    # row by row, on a batch of different distributions; unsorted logits
    batch = torch.tensor([[0.0, 9.0, 0.0], [9.0, 0.0, 0.0], [0.0, 0.0, 9.0]]).repeat(200, 1)
    out = sample_next(batch, temperature=0.5, generator=_gen(4401))
    check_true(bool((out == batch.argmax(-1)).float().mean() > 0.99),
               "each row is sampled from its own logits (softmax over the last axis)")
    # tied logits at the k-th place may all be kept; no crash
    sample_next(torch.zeros(3, 5), top_k=2, generator=_gen(4402))
    # the generator makes draws reproducible, whatever the global seed
    a = sample_next(logits.expand(50, -1).clone(), generator=_gen(7))
    torch.manual_seed(123)
    b = sample_next(logits.expand(50, -1).clone(), generator=_gen(7))
    check_true(bool(torch.equal(a, b)), "two calls with equally seeded generators gave different draws",
               hint="pass generator= to torch.multinomial")
    check_true(not bool((a == a[0]).all()), "50 draws at temperature 1 were all the same token: sample, "
               "do not take the argmax")
    for bad in (dict(temperature=0.0), dict(temperature=-1.0), dict(top_k=0)):
        try:
            sample_next(logits, **bad)
        except ValueError:
            continue
        check_true(False, f"sample_next(logits, {bad}) should raise ValueError")
    inplace = torch.tensor([[1.0, 2.0, 3.0]])
    sample_next(inplace, temperature=2.0, top_k=1, generator=_gen(1))
    check_true(inplace.tolist() == [[1.0, 2.0, 3.0]], "sample_next changed the caller's logits in place")


# ---------------------------------------------------------------- exercise 6: generation
def _vocab():
    from seqcourse.text import CharVocab

    return CharVocab("abcxyz", with_bos_eos=True)


class _Script(nn.Module):
    """A fake generator: row b emits ``script[language][b % len(...)]`` one character per step
    (then <eos>, then 'z' forever), so the right answer is known exactly. It checks what it is fed:
    <bos> first, then its own previous output (for names still going), the same language
    throughout, and its own state."""

    def __init__(self, vocab, script):
        super().__init__()
        self.vocab, self.script = vocab, script
        self.dummy = nn.Parameter(torch.zeros(1))
        self.calls = 0
        self.problems: list[str] = []

    def step(self, prev, language, state=None):
        self.calls += 1
        B = prev.shape[0]
        V = len(self.vocab)
        if state is None:
            t = torch.zeros(B, dtype=torch.long)
            if not bool((prev == self.vocab.bos_id).all()):
                self.problems.append("the first input must be <bos>")
            lang0 = language.clone()
        else:
            t, lang0, last = state
            going = last != self.vocab.eos_id
            going &= last != self.vocab.stoi["z"]
            if not torch.equal(prev[going], last[going]):
                self.problems.append("each step must be fed the token sampled at the previous step")
            if not torch.equal(language, lang0):
                self.problems.append("the language must stay the same at every step")
        logits = torch.full((B, V), -50.0)
        chosen = []
        for b in range(B):
            text = self.script[int(language[b])][b % len(self.script[int(language[b])])]
            ids = self.vocab.encode(text) + [self.vocab.eos_id]
            pos = int(t[b])
            chosen.append(ids[pos] if pos < len(ids) else self.vocab.stoi["z"])
        chosen = torch.tensor(chosen)
        logits[torch.arange(B), chosen] = 50.0
        return logits, (t + 1, lang0, chosen)


def test_generate(generate) -> None:
    vocab = _vocab()
    script = {0: ["abc", "b", "", "cab"], 1: ["xyx", "yy"]}
    for language, expected_rows in ((0, ["abc", "b", "", "cab", "abc"]), (1, ["xyx", "yy", "xyx"])):
        model = _Script(vocab, script)
        names = generate(model, vocab, language, len(expected_rows), max_len=10, temperature=1.0,
                         generator=_gen(4500))
        check_type(names, list, "generate's result")
        check_true(not model.problems, "; ".join(sorted(set(model.problems))))
        check_true(names == expected_rows, f"language {language}: generated {names}, expected {expected_rows}",
                   hint="stop each name at its own <eos> (not included) while the others go on; "
                        "use the language you were given")
        check_true(model.calls <= 5, f"{model.calls} model steps for names of at most 3 characters: "
                   "stop once every name has ended")
    # max_len caps the length; no <eos> ever
    model = _Script(vocab, {0: ["abcabcabcabc"]})
    names = generate(model, vocab, 0, 3, max_len=4, generator=_gen(4501))
    check_true(names == ["abca"] * 3, f"with max_len=4 got {names}", hint="at most max_len characters")
    # a real model with random weights: sampling, temperature and top_k are passed on
    torch.manual_seed(4502)

    class _Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(vocab), 8)
            self.lang = nn.Embedding(2, 8)
            self.rnn = nn.GRUCell(16, 8)
            self.out = nn.Linear(8, len(vocab))

        def step(self, prev, language, state=None):
            h = self.rnn(torch.cat([self.emb(prev), self.lang(language)], -1), state)
            return self.out(h) * 3, h

    tiny = _Tiny()
    a = generate(tiny, vocab, 1, 30, max_len=6, temperature=1.0, generator=_gen(11))
    b = generate(tiny, vocab, 1, 30, max_len=6, temperature=1.0, generator=_gen(11))
    check_true(a == b, "equally seeded generators should give the same names: pass generator on")
    check_true(len(set(a)) > 5, f"30 samples at temperature 1 gave only {len(set(a))} different names")
    one = generate(tiny, vocab, 1, 30, max_len=6, top_k=1, generator=_gen(12))
    check_true(len(set(one)) == 1, "with top_k=1 every name is the same (greedy): pass top_k on")
    cold = generate(tiny, vocab, 1, 30, max_len=6, temperature=0.01, generator=_gen(13))
    check_true(len(set(cold)) == 1, "at temperature 0.01 every name should be the greedy one: pass "
               "temperature on")
    check_true(all(isinstance(n, str) and len(n) <= 6 for n in a), "names are strings of at most max_len")


# ---------------------------------------------------------------- exercise 7: the fused loop
def _count_products(fn, *args):
    """Run fn and count matrix products at the dispatcher (mm, addmm, bmm...), however written."""
    from torch.utils._python_dispatch import TorchDispatchMode

    names = {"mm", "addmm", "bmm", "baddbmm", "mv", "addmv", "dot", "matmul", "linear"}

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in names:
                Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        result = fn(*args)
    return result, Count.n


def test_fused_lstm_forward(fused_lstm_forward) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        g = _gen(4600 + k)
        ref = _randomise(nn.LSTM(E, H, batch_first=True).double(), g)
        weights = [getattr(ref, f"{n}_l0").detach() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        x = torch.randn(B, T, E, generator=g, dtype=torch.float64)
        h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        c0 = torch.randn(B, H, generator=g, dtype=torch.float64)
        (out, (h, c)), products = _count_products(fused_lstm_forward, x, *weights, (h0, c0))
        r_out, (rh, rc) = ref(x, (h0[None], c0[None]))
        check_shape(out, (B, T, H), f"outputs for B={B}, T={T}")
        check_close(out, r_out, f"outputs vs nn.LSTM (case {k})", **TOL,
                    hint="gate order i, f, g, o; both biases")
        check_close(h, rh[0], f"final h (case {k})", **TOL)
        check_close(c, rc[0], f"final c (case {k})", **TOL, hint="return the last cell state")
        check_true(products <= T + 1, f"{products} matrix products for T={T}: the fused loop needs "
                   f"T + 1 (one for every step's input at once, one per step for h)",
                   hint="compute x @ weight_ih.T for all steps before the loop, and one product "
                        "h @ weight_hh.T per step for all four gates")
        out0, _ = fused_lstm_forward(x, *weights)
        check_close(out0, ref(x)[0], f"outputs with state=None (zeros) (case {k})", **TOL)
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    ref = _randomise(nn.LSTM(2, 3, batch_first=True).double(), _gen(4650))
    weights = [getattr(ref, f"{n}_l0").detach() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    check_true(torch.autograd.gradcheck(lambda x: fused_lstm_forward(x, *weights)[0], (x,),
                                        raise_exception=False),
               "gradients through fused_lstm_forward disagree with finite differences")
