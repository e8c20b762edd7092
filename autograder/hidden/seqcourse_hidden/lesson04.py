"""Hidden tests of lesson 04, "Deep and bidirectional RNNs".

Which test covers each class of mistake; every case below is stated in the exercise's *Graded on*
paragraph, and its visible tests try a small instance of each class. No GPU is used in grading: the
dtype tests stand for the device too, as they catch a tensor made without the input's dtype and
device (``torch.zeros(B, H)``).

| exercise | dtype | input | edge | extreme | side-effect |
|---|---|---|---|---|---|
| `lstm_layer` | test_lstm_layer: float64 in, float64 outputs and final state; float32 too; the mask is bool | test_lstm_layer: lengths unsorted, int64 and int32 | test_lstm_layer: B = 1, T = 1, a length of 1 and of T in one batch, no padding at all, B = H, odd T, both directions | test_lstm_layer: padding holding 1e4 changes nothing | test_lstm_layer: x and lengths unchanged; no gradient reaches padded inputs, some reaches real ones |
| `StackedBiLSTM` | test_stacked_bilstm: float64 in, float64 out; float32 too | test_stacked_bilstm: lengths unsorted, int64 and int32 | test_stacked_bilstm: 1, 2 and 3 layers, one and two directions, each (layer, direction) of h_n and c_n checked on its own; B = 1, T = 1 | n/a: no arithmetic beyond lstm_layer's, exercise 1 | test_stacked_bilstm: x unchanged; gradcheck through the stack |
| `packed_lstm` | test_packed_lstm: float64 in, float64 out; float32 too | test_packed_lstm: state=None and a given (h0, c0); lengths unsorted, int64 and int32 | test_packed_lstm: B = 1, T = 1, all-padding columns at the end, 1, 2 and 3 layers, one and two directions, each (layer, direction) of h_n and c_n checked on its own | test_packed_lstm: padding holding 1e4 changes nothing | test_packed_lstm: x and lengths unchanged; gradients reach x |
| `SurnameBiLSTM` | test_surname_bilstm: a float64 model gives float64 logits | test_surname_bilstm: lengths int64 and int32, unsorted | test_surname_bilstm: B = 1, names of length 1 and of the full width, both top directions (h_n[-2], h_n[-1]) | n/a: logits of an embedding and a linear layer; no arithmetic of the learner's own | test_surname_bilstm: tokens and lengths unchanged; gradients reach the embedding; dropout off in eval mode (two passes agree), on in train mode |
| `sample_next` | test_sample_next: float32 and float64 logits give int64 ids | test_sample_next: expanded (non-contiguous) logits, an int temperature | test_sample_next: B = 1, V = 1, top_k = 1, top_k = V, top_k > V, ties at the k-th place | test_sample_next: logits of 1e4 and temperature 0.01 (always the largest) | test_sample_next: the caller's logits unchanged; the global random state untouched when a generator is given |
| `generate` | n/a: it returns strings; the model's dtype and device are the model's | test_generate: a model whose state is a tuple and one whose state is a tensor, passed back as they are | test_generate: num = 1, max_len = 1, an empty name, names ending at different steps | test_generate: temperature 0.01 and top_k = 1 (greedy) | test_generate: runs under torch.no_grad(); the global random state untouched when a generator is given |
| `fused_lstm_forward` | test_fused_lstm_forward: float64 in, float64 out (given state and state=None); float32 too | test_fused_lstm_forward: state=None and a given (h0, c0) | test_fused_lstm_forward: B = 1, T = 1, E = H, E != H | test_fused_lstm_forward: pre-activations near 1e3 (saturated gates) | test_fused_lstm_forward: x, h0, c0 and the weights unchanged; gradcheck through x, h0 and c0 |

The experiment's graded cell (``test_bilstm_beats_rnn``) reads the notebook's own trained models and
charges a shortfall to ``SurnameBiLSTM`` unless the learner's ``packed_lstm``, which the run used,
fails its own tests.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqcourse import guard
from seqcourse.checks import CheckError, check_close, check_shape, check_true, check_type
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
from seqcourse_hidden._differential import lengths as random_lengths
from seqcourse_hidden._isolate import Exercises, judge_experiment

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("04-deep-rnn")

# (B, T, E, H): E != H catches transposes, B = 1 and T = 1 the edge cases, B = H a mask that
# broadcasts over the wrong axis.
SHAPES = [(4, 6, 3, 5), (1, 1, 2, 3), (5, 7, 4, 4), (3, 4, 6, 2), (4, 5, 3, 4)]
TOL = TOLERANCE[torch.float64]     # the tolerances every lesson states
TOL32 = TOLERANCE[torch.float32]
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
DTYPE_HINT = ("make new tensors with x.new_zeros(...) or torch.zeros(..., dtype=x.dtype, device=x.device): "
              "torch.zeros(B, H) is float32 on the CPU whatever the input")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, g, dtype=torch.float64, scale=1.0):
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


def _lengths(B: int, T: int, g: torch.Generator) -> torch.Tensor:
    """Random lengths in 1..T, unsorted, with T and (when B > 2) 1 among them."""
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[B // 2] = T
    if B > 2:
        lengths[-1] = 1
    return lengths


def _torch_packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor, state=None):
    """The reference: nn.LSTM over a packed batch, unpacked to (B, T, D*H)."""
    packed = pack_padded_sequence(x, lengths.cpu().long(), batch_first=True, enforce_sorted=False)
    out, (h, c) = lstm(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, (h, c)


def _randomise(module: nn.Module, g: torch.Generator, scale: float = 0.5) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def _cell_from(lstm: nn.LSTM, cell_class, layer: int = 0, reverse: bool = False):
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    D = 2 if lstm.bidirectional else 1
    cell = cell_class(lstm.input_size if layer == 0 else lstm.hidden_size * D, lstm.hidden_size)
    cell = cell.to(lstm.weight_ih_l0.dtype)
    cell.load_state_dict({n: getattr(lstm, n + suffix) for n in WEIGHTS})
    return cell


def _call(fn, what: str, *args, **kwargs):
    """``fn(*args)``, with a dtype clash turned into a message that says so."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as exc:
        text = str(exc)
        if any(word in text for word in ("dtype", "Double", "Float", "scalar type")):
            dtype = next((a.dtype for a in args if torch.is_tensor(a) and a.is_floating_point()), "these")
            raise CheckError(f"{what} failed with {dtype} inputs: {text.splitlines()[0]}\n"
                             f"Hint: {DTYPE_HINT}") from None
        raise


def _dtype(t, want: torch.dtype, name: str) -> None:
    check_true(t.dtype == want, f"{name} is {t.dtype}, but the inputs were {want}", hint=DTYPE_HINT)


def _unchanged(before: dict, after: dict, call: str, hint: str | None = None) -> None:
    for name, old in before.items():
        check_true(torch.equal(after[name], old), f"{call} changed its argument {name} in place",
                   hint=hint or "compute new tensors; in-place operations (x[...] = ..., c.mul_(...), "
                                "c += ...) change the caller's tensors")


def _gradcheck(fn, inputs, what: str) -> None:
    try:
        ok = torch.autograd.gradcheck(fn, inputs, raise_exception=False)
    except RuntimeError as exc:
        raise CheckError(f"backward through {what} failed: {str(exc).splitlines()[0]}\n"
                         "Hint: avoid in-place operations on tensors autograd needs; do not detach") from None
    check_true(ok, f"gradients through {what} disagree with finite differences",
               hint="keep every step in the autograd graph: no .detach(), .item(), torch.no_grad() or "
                    "in-place edits")


def _direction(D: int, index: int) -> str:
    layer, direction = divmod(index, D)
    return f"layer {layer}, {'backward' if direction else 'forward'} direction"


def _each_state(h, ref_h, c, ref_c, D: int, label: str) -> None:
    """h_n and c_n, one (layer, direction) at a time, so a message names the one that differs."""
    for index in range(ref_h.shape[0]):
        where = _direction(D, index)
        check_close(h[index], ref_h[index], f"h_n[{index}] ({where}; {label})", **TOL,
                    hint="order h_n as layer 0 forward, layer 0 backward, layer 1 forward, ...; each "
                         "layer after the first reads [forward; backward] of the layer below")
        check_close(c[index], ref_c[index], f"c_n[{index}] ({where}; {label})", **TOL)


# ---------------------------------------------------------------- exercise 1: one masked direction
def test_lstm_layer(length_mask, lstm_layer, LSTMCellScratch) -> None:
    mask = length_mask(torch.tensor([3, 1, 4]), 5)
    check_type(mask, torch.Tensor, "length_mask's result")
    check_true(mask.dtype == torch.bool, f"length_mask returns a bool tensor, got {mask.dtype}")
    check_true(mask.tolist() == [[True] * 3 + [False] * 2, [True] + [False] * 4, [True] * 4 + [False]],
               f"length_mask([3, 1, 4], 5) gave {mask.int().tolist()}",
               hint="position t is real when t < length")
    check_true(length_mask(torch.tensor([2, 3], dtype=torch.int32), 3).tolist() == [[True, True, False], [True] * 3],
               "length_mask with int32 lengths [2, 3] and T = 3 should give [[T, T, F], [T, T, T]]")
    check_true(not length_mask(torch.tensor([2]), 3).requires_grad, "the mask needs no gradient")
    for k, (B, T, E, H) in enumerate(SHAPES):
        g = _gen(4000 + k)
        lstm = _randomise(nn.LSTM(E, H, batch_first=True, bidirectional=True).double(), g)
        x = _randn(B, T, E, g=g)
        lengths = _lengths(B, T, g) if k != 3 else torch.full((B,), T)   # case 3: no padding at all
        if k == 4:
            lengths = lengths.int()
        ref_out, (ref_h, ref_c) = _torch_packed(lstm, x, lengths)
        label = f"B={B}, T={T}, H={H}, {lengths.dtype} lengths {lengths.tolist()}"
        for direction, reverse in enumerate((False, True)):
            cell = _cell_from(lstm, LSTMCellScratch, reverse=reverse)
            before = {"x": x.clone(), "lengths": lengths.clone()}
            result = _call(lstm_layer, "lstm_layer", cell, x, lengths, reverse=reverse)
            check_true(isinstance(result, tuple) and len(result) == 2,
                       "lstm_layer returns (outputs, (h, c))")
            _unchanged(before, {"x": x, "lengths": lengths}, "lstm_layer",
                       hint="mask the state; do not write zeros into the caller's x")
            out, (h, c) = result
            which = "backward" if reverse else "forward"
            check_shape(out, (B, T, H), f"the {which} outputs for {label}")
            _dtype(out, torch.float64, f"the {which} outputs")
            _dtype(h, torch.float64, f"the {which} final h")
            check_close(out, ref_out[..., direction * H:(direction + 1) * H], f"the {which} outputs ({label})",
                        **TOL, hint=("the backward direction starts at each sequence's last real "
                                     "position, lengths - 1, not at T - 1; padded outputs are 0; the mask "
                                     "at step t is mask[:, t, None], shape (B, 1)")
                        if reverse else "padded positions must output 0 and leave the state alone; the mask "
                                        "at step t is mask[:, t, None], shape (B, 1), not (B,)")
            check_close(h, ref_h[direction], f"the {which} final h ({label})", **TOL,
                        hint="the final state is the one after each sequence's last real step; lengths "
                             "are in no particular order")
            check_close(c, ref_c[direction], f"the {which} final c ({label})", **TOL)
        # changing what sits in the padding changes nothing, however large
        noisy = x.clone()
        noisy[~(torch.arange(T)[None] < lengths[:, None])] = 1e4
        cell = _cell_from(lstm, LSTMCellScratch, reverse=True)
        out, (h, _) = lstm_layer(cell, noisy, lengths, reverse=True)
        check_close(h, ref_h[1], f"the backward final h with 1e4 in the padding ({label})", **TOL,
                    hint="padded steps must not update the state")
        check_close(out, ref_out[..., H:], f"the backward outputs with 1e4 in the padding ({label})", **TOL)
    # float32 stays float32
    g = _gen(4010)
    lstm = _randomise(nn.LSTM(2, 3, batch_first=True), g)
    x, lengths = torch.randn(2, 4, 2, generator=g), torch.tensor([4, 2])
    out, (h, _) = lstm_layer(_cell_from(lstm, LSTMCellScratch), x, lengths)
    _dtype(out, torch.float32, "the outputs for float32 inputs")
    check_close(out, _torch_packed(lstm, x, lengths)[0], "the outputs for float32 inputs", **TOL32)
    # gradients flow to the inputs at real positions only
    g = _gen(4050)
    cell = _randomise(LSTMCellScratch(2, 3).double(), g)
    x = _randn(2, 4, 2, g=g).requires_grad_()
    out, (h, _) = lstm_layer(cell, x, torch.tensor([4, 2]), reverse=True)
    (out.sum() + h.sum()).backward()
    check_true(bool(x.grad[1, 2:].abs().max() == 0), "a gradient reached padded inputs: the padding leaks")
    check_true(bool(x.grad[1, :2].abs().max() > 0), "no gradient reached the real inputs")
    test_differential("lstm_layer", lstm_layer)
    test_differential("length_mask", length_mask)


# ---------------------------------------------------------------- exercise 2: stacked, bidirectional
def test_stacked_bilstm(StackedBiLSTM, load_torch_lstm) -> None:
    configs = [(2, True), (1, False), (3, True), (2, False), (1, True)]
    for k, ((B, T, E, H), (L, bi)) in enumerate(zip(SHAPES, configs, strict=True)):
        g = _gen(4100 + k)
        lstm = _randomise(nn.LSTM(E, H, num_layers=L, bidirectional=bi, batch_first=True).double(), g)
        model = StackedBiLSTM(E, H, num_layers=L, bidirectional=bi).double()
        D = 2 if bi else 1
        check_true(len(list(model.cells)) == L * D,
                   f"{L} layers x {D} directions need {L * D} cells, found {len(list(model.cells))}")
        names = {n: tuple(p.shape) for n, p in model.named_parameters()}
        want = {f"cells.{i}.{w}": tuple(getattr(lstm, f"{w}_l{i // D}{'_reverse' if i % D else ''}").shape)
                for i in range(L * D) for w in WEIGHTS}
        check_true(names == want, f"the parameters {names} should be {want}",
                   hint="layer l > 0 reads every direction of layer l - 1: input size D * H (H when "
                        "bidirectional=False)")
        load_torch_lstm(model, lstm)
        x = _randn(B, T, E, g=g)
        lengths = _lengths(B, T, g)
        if k % 2:
            lengths = lengths.int()
        before = {"x": x.clone(), "lengths": lengths.clone()}
        out, (h, c) = _call(model, "StackedBiLSTM", x, lengths)
        _unchanged(before, {"x": x, "lengths": lengths}, "StackedBiLSTM's forward")
        ref_out, (ref_h, ref_c) = _torch_packed(lstm, x, lengths)
        label = f"{L} layer(s), bidirectional={bi}, B={B}, T={T}, lengths {lengths.tolist()}"
        check_shape(out, (B, T, D * H), f"the outputs ({label})")
        check_shape(h, (L * D, B, H), f"h_n ({label})", hint="h_n is (num_layers * D, B, H), layer by layer")
        check_shape(c, (L * D, B, H), f"c_n ({label})")
        _dtype(out, torch.float64, "the outputs")
        _dtype(h, torch.float64, "h_n")
        _each_state(h, ref_h, c, ref_c, D, label)
        check_close(out, ref_out, f"the top layer's outputs ({label})", **TOL,
                    hint="each layer after the first reads [forward; backward] of the layer below")
    # float32 stays float32
    g = _gen(4110)
    lstm = _randomise(nn.LSTM(2, 3, num_layers=2, bidirectional=True, batch_first=True), g)
    model = load_torch_lstm(StackedBiLSTM(2, 3), lstm)
    x, lengths = torch.randn(2, 4, 2, generator=g), torch.tensor([4, 2])
    out, _ = model(x, lengths)
    _dtype(out, torch.float32, "the outputs for float32 inputs")
    check_close(out, _torch_packed(lstm, x, lengths)[0], "the outputs for float32 inputs", **TOL32)
    x = _randn(2, 3, 2, g=g).requires_grad_()
    model = _randomise(StackedBiLSTM(2, 2).double(), _gen(4150))
    lengths = torch.tensor([3, 2])
    _gradcheck(lambda x: model(x, lengths)[0], (x,), "StackedBiLSTM")
    test_differential("StackedBiLSTM", StackedBiLSTM)


# ---------------------------------------------------------------- exercise 3: packing
def test_packed_lstm(packed_lstm) -> None:
    configs = [(2, True), (1, True), (3, False), (2, True), (1, False)]
    for k, ((B, T, E, H), (L, bi)) in enumerate(zip(SHAPES, configs, strict=True)):
        g = _gen(4200 + k)
        D = 2 if bi else 1
        lstm = _randomise(nn.LSTM(E, H, num_layers=L, bidirectional=bi, batch_first=True).double(), g)
        x = _randn(B, T + 2, E, g=g)                  # two all-padding columns at the end
        lengths = _lengths(B, T, g)
        if k % 2:
            lengths = lengths.int()
        state = None if k % 2 == 0 else (_randn(L * D, B, H, g=g), _randn(L * D, B, H, g=g))
        label = (f"{L} layer(s), bidirectional={bi}, B={B}, T={T + 2}, {lengths.dtype} lengths "
                 f"{lengths.tolist()}, {'a given' if state else 'no'} initial state")
        before = {"x": x.clone(), "lengths": lengths.clone()}
        out, (h, c) = _call(packed_lstm, "packed_lstm", lstm, x, lengths, state)
        _unchanged(before, {"x": x, "lengths": lengths}, "packed_lstm")
        check_shape(out, (B, T + 2, D * H), f"the outputs ({label})",
                    hint="pad back to the input's length: pad_packed_sequence(..., total_length=T)")
        check_shape(h, (L * D, B, H), f"h_n ({label})", hint="keep the original batch order: enforce_sorted=False")
        _dtype(out, torch.float64, "the outputs")
        pad = torch.arange(T + 2)[None] >= lengths[:, None]
        check_true(bool(out[pad].abs().max() == 0), f"the outputs at padded positions must be exactly 0 ({label})")
        ref_out, (ref_h, ref_c) = _torch_packed(lstm, x, lengths, state)
        _each_state(h, ref_h, c, ref_c, D, label + "; pass the state to the LSTM" if state else label)
        check_close(out, ref_out, f"the outputs ({label})", **TOL,
                    hint="pack the batch so that padding is never read" + ("; pass the given state on" if state else ""))
        noisy = x.clone()
        noisy[pad] = 1e4
        out_noisy, (h_noisy, _) = packed_lstm(lstm, noisy, lengths, state)
        check_close(out_noisy, ref_out, f"the outputs with 1e4 in the padding ({label})", **TOL,
                    hint="pack the batch so that padding is never read")
        check_close(h_noisy, ref_h, f"h_n with 1e4 in the padding ({label})", **TOL)
    # float32 stays float32; gradients reach the inputs
    g = _gen(4210)
    lstm = _randomise(nn.LSTM(2, 3, batch_first=True), g)
    out, _ = packed_lstm(lstm, torch.randn(2, 3, 2, generator=g), torch.tensor([1, 3]))
    _dtype(out, torch.float32, "the outputs for float32 inputs")
    lstm = _randomise(nn.LSTM(2, 2, bidirectional=True, batch_first=True).double(), g)
    x = _randn(2, 3, 2, g=g).requires_grad_()
    _gradcheck(lambda x: packed_lstm(lstm, x, torch.tensor([3, 2]))[0], (x,), "packed_lstm")
    test_differential("packed_lstm", packed_lstm)


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
    before = {"tokens": tokens.clone(), "lengths": lengths.clone()}
    with torch.no_grad():
        logits = model(tokens, lengths)
        _unchanged(before, {"tokens": tokens, "lengths": lengths}, "SurnameBiLSTM's forward")
        check_shape(logits, (6, 4), "the logits of a batch of 6 names", hint="(B, C): keep the batch axis")
        emb = model.embedding(tokens)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = model.lstm(packed)
        expected = model.out(torch.cat([h[-2], h[-1]], dim=-1))
        check_close(logits, expected, "the logits vs out([h_n[-2]; h_n[-1]]) of the packed LSTM",
                    atol=1e-5, rtol=1e-4,
                    hint="use the top layer's final states (h_n[-2] forward, h_n[-1] backward), "
                         "not layer 0's (h_n[0], h_n[1]) nor outputs[:, -1]; torch.cat them on the last "
                         "axis (a .view or .reshape of h_n[-2:] mixes the batch rows: a transpose is missing)")
        check_close(model(tokens, lengths.int()), logits, "the logits with int32 lengths", atol=1e-5, rtol=1e-4)
        for i in range(6):
            n = int(lengths[i])
            alone = model(tokens[i:i + 1, :n], lengths[i:i + 1])
            check_shape(alone, (1, 4), f"the logits of one name alone (B = 1, length {n})",
                        hint="keep the batch axis: no .squeeze()")
            check_close(logits[i:i + 1], alone, f"the logits of name {i} (length {n}) vs the name alone",
                        atol=1e-5, rtol=1e-4, hint="padding must not reach the result: pack the batch")
        noisy = tokens.clone()
        noisy[tokens == 0] = 5
        check_close(model(noisy, lengths), logits, "the logits with other ids in the padding", atol=1e-5,
                    rtol=1e-4)
    check_true(not torch.allclose(logits.sum(-1), torch.ones(6), atol=1e-3),
               "the outputs sum to 1: return logits; nn.CrossEntropyLoss applies log-softmax")
    double = SurnameBiLSTM(vocab_size=12, emb_size=5, hid_size=6, num_classes=4).double().eval()
    with torch.no_grad():
        _dtype(_call(double, "a float64 SurnameBiLSTM", tokens, lengths), torch.float64,
               "the logits of a float64 model")
    model.train()
    model.zero_grad()
    model(tokens, lengths).sum().backward()
    check_true(model.embedding.weight.grad is not None and bool(model.embedding.weight.grad.abs().sum() > 0),
               "no gradient reached the embedding")
    drop = SurnameBiLSTM(vocab_size=12, emb_size=5, hid_size=6, num_classes=4, dropout=0.5)
    check_true(drop.lstm.dropout == 0.5, "pass dropout to nn.LSTM (between its layers)")
    # dropout only while training: in eval mode two passes agree, in train mode they differ
    drop.eval()
    with torch.no_grad():
        first, second = drop(tokens, lengths), drop(tokens, lengths)
    check_true(torch.equal(first, second), "in eval mode (model.eval()) two passes over the same names gave "
               "different logits: dropout is still on", hint="use nn.Dropout (a module, which eval() turns off), "
               "or F.dropout(x, p, training=self.training)")
    drop.train()
    with torch.no_grad():
        check_true(not torch.equal(drop(tokens, lengths), drop(tokens, lengths)),
                   "in train mode dropout=0.5 changed nothing between two passes: is the dropout applied?")
    test_differential("SurnameBiLSTM", SurnameBiLSTM)


def held_out_accuracy(model: nn.Module, vocab, max_per_language: int) -> float:
    """The test-split accuracy of a trained classifier, on the split the notebook uses."""
    from seqcourse.data.surnames import load_surnames
    from seqcourse.text import LabelledTexts
    from seqcourse.train import evaluate

    test = load_surnames(max_per_language=max_per_language)["test"]
    device = next(model.parameters()).device
    loader = LabelledTexts(test.names, test.labels, vocab).loader(256, shuffle=False)
    return evaluate(model, loader, nn.CrossEntropyLoss(), device)[1]


def test_bilstm_beats_rnn(namespace: dict) -> None:
    """The notebook's trained BiLSTM beats its trained lesson-01 RNN on the test split by the
    profile's margin. The run used the learner's ``SurnameBiLSTM`` and, inside it, ``packed_lstm``: a
    shortfall is charged to ``packed_lstm`` when that fails its own tests while ``SurnameBiLSTM``
    passes its tests with the reference ``packed_lstm``."""
    from seqcourse.env import get_profile

    guard.verify()
    budget = get_profile().budget("04-deep-rnn")
    classifier, baseline, vocab = (namespace.get(n) for n in ("classifier", "baseline", "vocab"))
    shortfall = None
    if classifier is None or baseline is None or vocab is None:
        shortfall = "there is no trained classifier and baseline: the training cell stopped before it finished"
    else:
        bilstm_acc = held_out_accuracy(classifier, vocab, budget.max_per_language)
        rnn_acc = held_out_accuracy(baseline, vocab, budget.max_per_language)
        if not bilstm_acc >= rnn_acc + budget.margin:
            shortfall = (f"the BiLSTM's held-out accuracy {bilstm_acc:.3f} does not beat lesson 01's RNN "
                         f"({rnn_acc:.3f}) by this profile's margin of {budget.margin:.2f}")
    packed = EXERCISES.learners(namespace, "packed_lstm").get("packed_lstm")
    judge_experiment(shortfall, "SurnameBiLSTM", lambda: test_surname_bilstm(namespace["SurnameBiLSTM"]),
                     {"packed_lstm": lambda: test_packed_lstm(packed)})


# ---------------------------------------------------------------- exercise 5: sampling
def _draws(sample_next, logits, n, **kw):
    out = sample_next(logits.expand(n, -1).clone(), generator=_gen(4400), **kw)
    check_shape(out, (n,), "sample_next's result")
    check_true(out.dtype == torch.long, f"sample_next returns int64 ids, got {out.dtype}")
    return torch.bincount(out, minlength=logits.shape[-1]).double() / n


def _sample(sample_next, logits, what: str, **kw):
    """One call, with the error that multinomial raises for NaN probabilities explained."""
    try:
        return sample_next(logits, **kw)
    except RuntimeError as exc:
        if "inf" in str(exc) or "nan" in str(exc):
            raise CheckError(f"sample_next failed for {what}: {str(exc).splitlines()[0]}\n"
                             "Hint: exp() of large logits overflows to inf and inf / inf is NaN: use "
                             "torch.softmax, which subtracts the largest logit first") from None
        raise


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
    for top_k in (6, 50):
        freq = _draws(sample_next, logits, 4000, top_k=top_k)
        check_true(bool((freq > 0).sum() >= 4), f"top_k={top_k} with a vocabulary of 6 keeps every token",
                   hint="a top_k of V or more keeps everything: do not ask topk for more than V values")
    # row by row, on a batch of different distributions; unsorted logits
    batch = torch.tensor([[0.0, 9.0, 0.0], [9.0, 0.0, 0.0], [0.0, 0.0, 9.0]]).repeat(200, 1)
    out = sample_next(batch, temperature=0.5, generator=_gen(4401))
    check_true(bool((out == batch.argmax(-1)).float().mean() > 0.99),
               "each row is sampled from its own logits (softmax over the last axis)")
    # edge sizes: one row, one token; ties at the k-th place may all be kept
    check_true(sample_next(torch.tensor([[0.3]]), generator=_gen(4403)).tolist() == [0],
               "with one token in the vocabulary the draw is always 0")
    check_shape(sample_next(logits, generator=_gen(4404)), (1,), "the ids for a batch of one")
    sample_next(torch.zeros(3, 5), top_k=2, generator=_gen(4402))
    # extremes: huge logits, a low temperature; float64 and int temperatures
    huge = torch.tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 5.0]], dtype=torch.float64)
    ids = _sample(sample_next, huge, "logits of 1e4", generator=_gen(4405))
    check_true(ids.dtype == torch.long and ids.tolist() == [0, 1], f"logits of 1e4 should always give "
               f"their largest token, got {ids.tolist()} ({ids.dtype})")
    cold = _sample(sample_next, logits.expand(200, -1), "temperature 0.01", temperature=0.01, generator=_gen(4406))
    check_true(bool((cold == 0).all()), "at temperature 0.01 every draw should be the largest logit")
    two = _draws(sample_next, logits, n, temperature=2)
    check_true(float((two - torch.softmax(logits[0].double() / 2, 0)).abs().sum() / 2) < 0.015,
               "an int temperature (2) should act as 2.0")
    # the generator makes draws reproducible, whatever the global seed, and leaves the global state alone
    a = sample_next(logits.expand(50, -1).clone(), generator=_gen(7))
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    b = sample_next(logits.expand(50, -1).clone(), generator=_gen(7))
    check_true(bool(torch.equal(a, b)), "two calls with equally seeded generators gave different draws",
               hint="pass generator= to torch.multinomial")
    check_true(bool(torch.equal(torch.get_rng_state(), rng)), "sample_next drew from the global random state "
               "although a generator was given", hint="pass generator= to torch.multinomial")
    check_true(not bool((a == a[0]).all()), "50 draws at temperature 1 were all the same token: sample, "
               "do not take the argmax")
    for bad in (dict(temperature=0.0), dict(temperature=-1.0), dict(top_k=0)):
        try:
            sample_next(logits, **bad)
        except ValueError:
            continue
        check_true(False, f"sample_next(logits, {bad}) should raise ValueError")
    # the caller's logits unchanged, for every setting (a special case, such as temperature 1 or no top_k,
    # must not skip the care the general path takes)
    for kw in (dict(temperature=2.0, top_k=1), dict(temperature=1.0, top_k=2), dict(temperature=1.0),
               dict(top_k=2), dict(temperature=0.5), dict()):
        inplace = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
        sample_next(inplace, generator=_gen(1), **kw)
        check_true(inplace.tolist() == [[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]],
                   f"sample_next(logits, {', '.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}) changed the "
                   "caller's logits in place", hint="work on a copy: logits / temperature makes a new tensor, "
                   "logits.div_(...) or logits[...] = -inf edits the caller's")


# ---------------------------------------------------------------- exercise 6: generation
def _vocab():
    from seqcourse.text import CharVocab

    return CharVocab("abcxyz", with_bos_eos=True)


class _Script(nn.Module):
    """A fake generator: row b emits ``script[language][b % len(...)]`` one character per step
    (then <eos>, then 'z' forever), so the right answer is known exactly. It checks what it is fed:
    <bos> first, then its own previous output (for names still going), the same language
    throughout, and its own state; and that gradients are off."""

    def __init__(self, vocab, script):
        super().__init__()
        self.vocab, self.script = vocab, script
        self.dummy = nn.Parameter(torch.zeros(1))
        self.calls = 0
        self.problems: list[str] = []

    def step(self, prev, language, state=None):
        self.calls += 1
        if torch.is_grad_enabled():
            self.problems.append("generate must run under torch.no_grad()")
        B = prev.shape[0]
        V = len(self.vocab)
        if state is None:
            t = torch.zeros(B, dtype=torch.long)
            if not bool((prev == self.vocab.bos_id).all()):
                self.problems.append("the first input must be <bos>")
            lang0 = language.clone()
        else:
            if not (isinstance(state, tuple) and len(state) == 3):
                self.problems.append("pass back the state the model returned, as it is")
                return torch.zeros(B, V), state
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
    for language, expected_rows in ((0, ["abc", "b", "", "cab", "abc"]), (1, ["xyx", "yy", "xyx"]), (1, ["xyx"])):
        model = _Script(vocab, script)
        rng = torch.get_rng_state()
        names = generate(model, vocab, language, len(expected_rows), max_len=10, temperature=1.0,
                         generator=_gen(4500))
        check_type(names, list, "generate's result")
        check_true(not model.problems, "; ".join(sorted(set(model.problems))))
        check_true(names == expected_rows, f"language {language}, num={len(expected_rows)}: generated {names}, "
                   f"expected {expected_rows}",
                   hint="stop each name at its own <eos> (not included) while the others go on; "
                        "use the language you were given; keep one name per row, also for num = 1")
        check_true(model.calls <= 5, f"{model.calls} model steps for names of at most 3 characters: "
                   "stop once every name has ended")
        check_true(bool(torch.equal(torch.get_rng_state(), rng)), "generate drew from the global random state "
                   "although a generator was given", hint="pass the generator on to sample_next")
    # max_len caps the length; no <eos> ever
    for max_len, want in ((4, "abca"), (1, "a")):
        model = _Script(vocab, {0: ["abcabcabcabc"]})
        names = generate(model, vocab, 0, 3, max_len=max_len, generator=_gen(4501))
        check_true(names == [want] * 3, f"with max_len={max_len} got {names}", hint="at most max_len characters")
    # a real model with random weights, whose state is a tensor: sampling, temperature and top_k are passed on
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
PRODUCTS = {"mm", "addmm", "bmm", "baddbmm", "mv", "addmv", "dot", "matmul", "linear"}


def _count_products(fn, *args):
    """Run fn and count matrix products at the dispatcher (mm, addmm, bmm...), however written."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in PRODUCTS:
                Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        result = fn(*args)
    return result, Count.n


def test_fused_lstm_forward(fused_lstm_forward) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        g = _gen(4600 + k)
        ref = _randomise(nn.LSTM(E, H, batch_first=True).double(), g)
        weights = [getattr(ref, f"{n}_l0").detach() for n in WEIGHTS]
        x, h0, c0 = _randn(B, T, E, g=g), _randn(B, H, g=g), _randn(B, H, g=g)
        before = {"x": x.clone(), "h0": h0.clone(), "c0": c0.clone(),
                  **{n: w.clone() for n, w in zip(WEIGHTS, weights, strict=True)}}
        (out, (h, c)), products = _count_products(
            lambda *a: _call(fused_lstm_forward, "fused_lstm_forward", *a), x, *weights, (h0, c0))
        _unchanged(before, {"x": x, "h0": h0, "c0": c0, **dict(zip(WEIGHTS, weights, strict=True))},
                   "fused_lstm_forward", hint="compute new tensors: c = f * c + i * g, not c.mul_(f) or "
                                             "c += ..., which change the caller's state")
        r_out, (rh, rc) = ref(x, (h0[None], c0[None]))
        label = f"B={B}, T={T}, E={E}, H={H}, given state"
        check_shape(out, (B, T, H), f"the outputs ({label})")
        _dtype(out, torch.float64, "the outputs")
        _dtype(c, torch.float64, "the final c")
        check_close(out, r_out, f"the outputs ({label})", **TOL, hint="gate order i, f, g, o; both biases")
        check_close(h, rh[0], f"the final h ({label})", **TOL)
        check_close(c, rc[0], f"the final c ({label})", **TOL, hint="return the last cell state")
        check_true(products <= T + 1, f"fused_lstm_forward ran {products} matrix products for T={T}; the "
                   f"fused loop runs at most T + 1 = {T + 1} (one for every step's input at once, one per "
                   "step for h)", hint="compute x @ weight_ih.T for all steps before the loop, and one "
                   "product h @ weight_hh.T per step for all four gates")
        out0, (h_none, _) = _call(fused_lstm_forward, "fused_lstm_forward with state=None", x, *weights)
        _dtype(h_none, torch.float64, "the final h with state=None")
        check_close(out0, ref(x)[0], f"the outputs with state=None (zeros) (B={B}, T={T})", **TOL)
    # float32 stays float32
    g = _gen(4610)
    ref = _randomise(nn.LSTM(2, 3, batch_first=True), g)
    x = torch.randn(2, 4, 2, generator=g)
    out, _ = fused_lstm_forward(x, *[getattr(ref, f"{n}_l0").detach() for n in WEIGHTS])
    _dtype(out, torch.float32, "the outputs for float32 inputs")
    check_close(out, ref(x)[0], "the outputs for float32 inputs", **TOL32)
    # saturated gates
    g = _gen(4620)
    ref = _randomise(nn.LSTM(4, 5, batch_first=True).double(), g, scale=20.0)
    x = _randn(3, 4, 4, g=g, scale=50.0)
    out, _ = fused_lstm_forward(x, *[getattr(ref, f"{n}_l0").detach() for n in WEIGHTS])
    check_close(out, ref(x)[0], "the outputs with saturated gates (pre-activations near 1e3)", **TOL,
                hint="use torch.sigmoid and torch.tanh: a hand-written formula with exp() overflows to NaN")
    # gradients through x and the initial state
    ref = _randomise(nn.LSTM(2, 3, batch_first=True).double(), _gen(4650))
    weights = [getattr(ref, f"{n}_l0").detach() for n in WEIGHTS]
    g = _gen(4651)
    inputs = (_randn(2, 3, 2, g=g).requires_grad_(), _randn(2, 3, g=g).requires_grad_(),
              _randn(2, 3, g=g).requires_grad_())
    _gradcheck(lambda x, h, c: fused_lstm_forward(x, *weights, (h, c))[0], inputs, "fused_lstm_forward")
    test_differential("fused_lstm_forward", fused_lstm_forward)


# ---------------------------------------------------------------- differential tests
# The deterministic exercises against their references on generated inputs within Graded on (see
# _differential.py); EXAMPLES: how many inputs each answer tries (bench/differential_examples.py
# measures what each needs). sample_next and generate draw random numbers in a way the text leaves
# partly open, so their tests above check distributions, the generator and the caller's inputs.
EXAMPLES = {"length_mask": 20, "lstm_layer": 30, "StackedBiLSTM": 20, "packed_lstm": 30, "SurnameBiLSTM": 15,
            "fused_lstm_forward": 40}


@st.composite
def _batch(draw, max_T: int = 6):
    B, T, E, H = draw(st.integers(1, 4)), draw(st.integers(1, max_T)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype, scale, g = pick(draw, DTYPES), pick(draw, SCALES), gen(draw(seeds()))
    n = random_lengths(g, B, T).to(pick(draw, (torch.int64, torch.int32)))
    x = randn(g, B, T, E, dtype=dtype, scale=scale)
    return B, T, E, H, dtype, scale, g, n, x


@st.composite
def _mask_cases(draw):
    B, T, extra = draw(st.integers(1, 5)), draw(st.integers(1, 7)), draw(st.integers(0, 2))
    g = gen(draw(seeds()))
    n = random_lengths(g, B, T).to(pick(draw, (torch.int64, torch.int32)))
    return Case((n, T + extra), f"lengths {n.tolist()} ({n.dtype}), T = {T + extra}")


@st.composite
def _layer_cases(draw):
    B, T, E, H, dtype, scale, g, n, x = draw(_batch())
    cell = _randomise(nn.LSTMCell(E, H).to(dtype), g)
    reverse = draw(st.booleans())
    (x,) = with_grad((x,), dtype)
    return Case((cell, x, n, reverse), f"an nn.LSTMCell({E}, {H}) ({dtype}), B={B}, T={T}, lengths {n.tolist()} "
                f"({n.dtype}), inputs of size {scale:g}, reverse={reverse}", grads=(1,) if dtype == torch.float64 else ())


@st.composite
def _stacked_cases(draw):
    B, T, E, H, dtype, scale, g, n, x = draw(_batch(max_T=5))
    layers, both = draw(st.integers(1, 3)), draw(st.booleans())
    (x,) = with_grad((x,), dtype)
    return Case(((E, H, layers, both), x, n, dtype == torch.float64, draw(seeds())),
                f"StackedBiLSTM({E}, {H}, num_layers={layers}, bidirectional={both}) ({dtype}), B={B}, T={T}, lengths "
                f"{n.tolist()}, inputs of size {scale:g}", grads=(1,) if dtype == torch.float64 else ())


def _built(cls, ref_cls, eval_mode: bool = False):
    """``cls`` built under one seed with the reference's weights, run on the case's inputs."""
    def run(sizes, *inputs_double_seed):
        *inputs, double, seed = inputs_double_seed
        state = module_call(ref_cls, sizes, seed).state_dict()
        model = module_call(cls, sizes, seed, state)
        model = model.double() if double else model
        return (model.eval() if eval_mode else model)(*inputs)
    return run


@st.composite
def _packed_cases(draw):
    B, T, E, H, dtype, scale, g, n, x = draw(_batch())
    extra = draw(st.integers(0, 2))                     # padding columns past the longest sequence
    x = torch.cat([x, randn(g, B, extra, E, dtype=dtype)], dim=1)
    layers, both = draw(st.integers(1, 2)), draw(st.booleans())
    lstm = _randomise(nn.LSTM(E, H, num_layers=layers, bidirectional=both, batch_first=True).to(dtype), g)
    given = draw(st.booleans())
    D = 2 if both else 1
    state = (randn(g, layers * D, B, H, dtype=dtype), randn(g, layers * D, B, H, dtype=dtype)) if given else None
    (x,) = with_grad((x,), dtype)
    return Case((lstm, x, n, state), f"nn.LSTM({E}, {H}, num_layers={layers}, bidirectional={both}) ({dtype}), "
                f"B={B}, T={T + extra}, lengths {n.tolist()} ({n.dtype}), " + ("a given state" if given else "state=None"),
                grads=(1,) if dtype == torch.float64 else ())


@st.composite
def _surname_cases(draw):
    V, E, H, C = draw(st.integers(3, 9)), draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(2, 4))
    B, T, g = draw(st.integers(1, 4)), draw(st.integers(1, 6)), gen(draw(seeds()))
    n = random_lengths(g, B, T).to(pick(draw, (torch.int64, torch.int32)))
    tokens = torch.randint(1, V, (B, T), generator=g).masked_fill(torch.arange(T)[None] >= n[:, None], 0)
    double = draw(st.booleans())
    return Case(((V, E, H, C), tokens, n, double, draw(seeds())),
                f"SurnameBiLSTM({V}, {E}, {H}, {C}){'.double()' if double else ''} in eval mode on B={B}, T={T}, "
                f"lengths {n.tolist()} ({n.dtype})")


@st.composite
def _fused_cases(draw):
    B, T, E, H, dtype, scale, g, n, x = draw(_batch())
    weights = [randn(g, 4 * H, E, dtype=dtype, scale=0.5), randn(g, 4 * H, H, dtype=dtype, scale=0.5),
               randn(g, 4 * H, dtype=dtype, scale=0.5), randn(g, 4 * H, dtype=dtype, scale=0.5)]
    given = draw(st.booleans())
    h0, c0 = randn(g, B, H, dtype=dtype), randn(g, B, H, dtype=dtype)
    tensors = with_grad([x, *weights, h0, c0], dtype)
    return Case((*tensors, given), f"B={B}, T={T}, E={E}, H={H}, {dtype}, inputs of size {scale:g}, "
                + ("a given state" if given else "state=None"),
                grads=(tuple(range(7)) if given else tuple(range(5))) if dtype == torch.float64 else ())


def _fused(fn):
    def run(x, w_ih, w_hh, b_ih, b_hh, h0, c0, given):
        return fn(x, w_ih, w_hh, b_ih, b_hh, (h0, c0) if given else None)
    return run


def test_differential(name: str, answer) -> None:
    """``name``'s answer against the reference on generated inputs (see EXAMPLES)."""
    reference = EXERCISES.reference(name)
    wraps = {"length_mask": (_mask_cases(), lambda f: f),
             "lstm_layer": (_layer_cases(), lambda f: f),
             "StackedBiLSTM": (_stacked_cases(), lambda f: _built(f, reference)),
             "packed_lstm": (_packed_cases(), lambda f: f),
             "SurnameBiLSTM": (_surname_cases(), lambda f: _built(f, reference, eval_mode=True)),
             "fused_lstm_forward": (_fused_cases(), _fused)}
    cases, wrap = wraps[name]
    differential(wrap(answer), wrap(reference), cases, name, EXAMPLES[name])
