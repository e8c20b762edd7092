"""Plausible wrong answers for lesson 04. Each must lose points (tests/test_mistakes.py)."""

from seqcourse.grading.mistakes import Mistake

_MASK = """
def length_mask(lengths, T):
    return torch.arange(T, device=lengths.device)[None, :] {op} lengths[:, None]
"""


def _layer(op="<", order="reversed(range(T)) if reverse else range(T)", keep="torch.where(m, h_new, h)",
           keep_c="torch.where(m, c_new, c)", out="torch.where(m, h_new, torch.zeros_like(h_new))"):
    """The masked layer with one line replaceable; the defaults give the right answer."""
    return _MASK.format(op=op) + f"""

def lstm_layer(cell, x, lengths, reverse=False):
    B, T, _ = x.shape
    mask = length_mask(lengths.to(x.device), T)
    h = x.new_zeros(B, cell.hidden_size)
    c = x.new_zeros(B, cell.hidden_size)
    outputs = [None] * T
    for t in {order}:
        h_new, c_new = cell(x[:, t], (h, c))
        m = mask[:, t, None]
        h = {keep}
        c = {keep_c}
        outputs[t] = {out}
    return torch.stack(outputs, dim=1), (h, c)
"""


_STACK_INIT = """
class StackedBiLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers=2, bidirectional=True):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.num_directions = 2 if bidirectional else 1
        D = self.num_directions
        self.cells = nn.ModuleList(
            LSTMCellScratch(input_size if layer == 0 else D * hidden_size, hidden_size)
            for layer in range(num_layers) for _ in range(D))
"""


def _stack(cell="self.cells[layer * D + direction]", feed="layer_input", concat="outputs",
           finals="(torch.stack(hs), torch.stack(cs))"):
    return _STACK_INIT + f"""
    def forward(self, x, lengths):
        D = self.num_directions
        layer_input, hs, cs = x, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(D):
                out, (h, c) = lstm_layer({cell}, {feed}, lengths, reverse=direction == 1)
                outputs.append(out)
                hs.append(h)
                cs.append(c)
            layer_input = torch.cat({concat}, dim=-1)
        return layer_input, {finals}
"""


def _classifier(lstm="nn.LSTM(emb_size, hid_size, num_layers=2, bidirectional=True, batch_first=True, dropout=dropout)",
                out_size="2 * hid_size",
                run="_, (h_n, _) = packed_lstm(self.lstm, self.embedding(tokens), lengths)",
                features="torch.cat([h_n[-2], h_n[-1]], dim=-1)", result="self.out(self.dropout(features))"):
    return f"""
class SurnameBiLSTM(nn.Module):
    def __init__(self, vocab_size, emb_size, hid_size, num_classes, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=0)
        self.lstm = {lstm}
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear({out_size}, num_classes)

    def forward(self, tokens, lengths):
        {run}
        features = {features}
        return {result}
"""


def _sampler(scale="logits = logits / temperature", kth="logits.topk(top_k, dim=-1).values[:, -1:]",
             draw="torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)"):
    return f"""
def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {{temperature}}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {{top_k}}")
    {scale}
    if top_k is not None and top_k < logits.shape[-1]:
        kth = {kth}
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return {draw}
"""


def _generate(start="vocab.bos_id", language="language_id", steps="range(max_len)",
              call="model.step(prev, languages, state)", record="torch.where(done, vocab.eos_id, prev)",
              stop="done.all()", decode="vocab.decode(row)"):
    return f"""
def generate(model, vocab, language_id, num, max_len=20, temperature=1.0, top_k=None,
             generator=None):
    device = next(model.parameters()).device
    prev = torch.full((num,), {start}, dtype=torch.long, device=device)
    languages = torch.full((num,), {language}, dtype=torch.long, device=device)
    state, done, chars = None, torch.zeros(num, dtype=torch.bool, device=device), []
    with torch.no_grad():
        for _ in {steps}:
            logits, state = {call}
            prev = sample_next(logits.cpu(), temperature, top_k, generator).to(device)
            done = done | (prev == vocab.eos_id)
            chars.append({record})
            if {stop}:
                break
    ids = torch.stack(chars, dim=1).tolist()
    return [{decode} for row in ids]
"""


def _fused(pre="x @ weight_ih.T + (bias_ih + bias_hh)", step="x_gates[:, t] + h @ weight_hh.T",
           chunks="i, f, g, o", final="(h, c)"):
    return f"""
def fused_lstm_forward(x, weight_ih, weight_hh, bias_ih, bias_hh, state=None):
    B, T, _ = x.shape
    H = weight_hh.shape[1]
    h, c = state if state is not None else (x.new_zeros(B, H), x.new_zeros(B, H))
    h0, c0 = h, c
    x_gates = {pre}
    outputs = []
    for t in range(T):
        gates = {step}
        {chunks} = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), {final}
"""


MISTAKES = [
    # ---------------------------------------------------------------- lstm_layer
    Mistake("lstm_layer", "mask-off-by-one", "counts position t = length as real: t <= length", _layer(op="<=")),
    Mistake("lstm_layer", "no-mask", "lets padded steps update the state (lesson 01's forward-only habit)",
            _layer(keep="h_new", keep_c="c_new", out="h_new")),
    Mistake("lstm_layer", "padded-outputs-carry-state", "masks the state but outputs h at padded steps",
            _layer(out="h")),
    Mistake("lstm_layer", "reverse-by-flipping-padded", "reverses the padded tensor, so the backward pass "
            "starts in the padding", _MASK.format(op="<") + """

def lstm_layer(cell, x, lengths, reverse=False):
    B, T, _ = x.shape
    if reverse:
        x = x.flip(1)
    mask = length_mask(lengths.to(x.device), T)
    state, outputs = None, []
    for t in range(T):
        h, c = cell(x[:, t], state)
        state = (h, c)
        outputs.append(h)
    outputs = torch.stack(outputs, dim=1)
    if reverse:
        outputs = outputs.flip(1)
    outputs = outputs * mask[..., None]
    rows = torch.arange(B)
    last = torch.zeros_like(lengths) if reverse else lengths - 1
    return outputs, (outputs[rows, last], state[1])
"""),
    Mistake("lstm_layer", "backward-outputs-in-loop-order", "leaves the backward outputs in the order "
            "they were computed (reversed in time)", _layer().replace(
                "outputs[t] = torch.where", "outputs[T - 1 - t if reverse else t] = torch.where")),
    # ---------------------------------------------------------------- StackedBiLSTM
    Mistake("StackedBiLSTM", "directions-swapped-for-next-layer", "feeds the next layer [backward; forward]",
            _stack(concat="outputs[::-1]")),
    Mistake("StackedBiLSTM", "states-direction-major", "orders h_n as all forward layers, then all backward",
            _stack(finals="(torch.stack(hs[0::D] + hs[1::D]), torch.stack(cs[0::D] + cs[1::D]))")),
    Mistake("StackedBiLSTM", "backward-uses-forward-cell", "runs both directions with the forward cell",
            _stack(cell="self.cells[layer * D]")),
    Mistake("StackedBiLSTM", "every-layer-reads-input", "feeds the original input to every layer",
            _stack(feed="x")),
    # ---------------------------------------------------------------- packed_lstm
    Mistake("packed_lstm", "no-packing", "runs the LSTM on the padded tensor", """
def packed_lstm(lstm, x, lengths, state=None):
    return lstm(x, state)
"""),
    Mistake("packed_lstm", "enforce-sorted", "keeps enforce_sorted=True, which needs lengths sorted", """
def packed_lstm(lstm, x, lengths, state=None):
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True)
    packed_out, (h_n, c_n) = lstm(packed, state)
    outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
    return outputs, (h_n, c_n)
"""),
    Mistake("packed_lstm", "no-total-length", "unpacks to the longest length, not the input's T", """
def packed_lstm(lstm, x, lengths, state=None):
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_out, (h_n, c_n) = lstm(packed, state)
    outputs, _ = pad_packed_sequence(packed_out, batch_first=True)
    return outputs, (h_n, c_n)
"""),
    Mistake("packed_lstm", "states-from-padded-run", "packs for the outputs but takes h_n from a padded run", """
def packed_lstm(lstm, x, lengths, state=None):
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_out, _ = lstm(packed, state)
    outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
    return outputs, lstm(x, state)[1]
"""),
    # ---------------------------------------------------------------- SurnameBiLSTM
    Mistake("SurnameBiLSTM", "first-layer-states", "classifies from layer 0's states h_n[0], h_n[1]",
            _classifier(features="torch.cat([h_n[0], h_n[1]], dim=-1)")),
    Mistake("SurnameBiLSTM", "last-padded-output", "takes outputs[:, -1], a padded position for short names",
            _classifier(run="outputs, _ = packed_lstm(self.lstm, self.embedding(tokens), lengths)",
                        features="outputs[:, -1]")),
    Mistake("SurnameBiLSTM", "forward-direction-only", "uses only the top forward state",
            _classifier(out_size="hid_size", features="h_n[-2]")),
    Mistake("SurnameBiLSTM", "no-packing", "runs the LSTM on the padded batch",
            _classifier(run="_, (h_n, _) = self.lstm(self.embedding(tokens))")),
    Mistake("SurnameBiLSTM", "softmax-output", "returns probabilities instead of logits",
            _classifier(result="torch.softmax(self.out(self.dropout(features)), dim=-1)")),
    Mistake("SurnameBiLSTM", "one-layer", "builds a one-layer LSTM",
            _classifier(lstm="nn.LSTM(emb_size, hid_size, bidirectional=True, batch_first=True)")),
    # ---------------------------------------------------------------- sample_next
    Mistake("sample_next", "temperature-after-softmax", "divides the probabilities, not the logits, by the "
            "temperature (multinomial renormalises: no effect)",
            _sampler(draw="torch.multinomial(torch.softmax(logits, dim=-1) / temperature, 1, "
                          "generator=generator).squeeze(1)", scale="pass")),
    Mistake("sample_next", "temperature-multiplies", "multiplies the logits by the temperature",
            _sampler(scale="logits = logits * temperature")),
    Mistake("sample_next", "top-k-plus-one", "keeps k + 1 tokens: compares with the (k+1)-th largest",
            _sampler(kth="logits.topk(min(top_k + 1, logits.shape[-1]), dim=-1).values[:, -1:]")),
    Mistake("sample_next", "greedy", "takes the argmax instead of sampling",
            _sampler(draw="logits.argmax(dim=-1)")),
    Mistake("sample_next", "ignores-generator", "draws from the global random state",
            _sampler(draw="torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(1)")),
    Mistake("sample_next", "in-place", "divides the caller's logits in place",
            _sampler(scale="logits /= temperature")),
    # ---------------------------------------------------------------- generate
    Mistake("generate", "starts-from-padding", "feeds the padding id first, not <bos>", _generate(start="vocab.pad_id")),
    Mistake("generate", "goes-on-after-eos", "keeps every character sampled after a name's <eos>",
            _generate(record="prev", decode="vocab.decode(row, stop_at_eos=False)")),
    Mistake("generate", "fresh-state", "forgets the state between steps",
            _generate(call="model.step(prev, languages, None)")),
    Mistake("generate", "language-ignored", "always asks for language 0", _generate(language="0")),
    Mistake("generate", "max-len-plus-one", "allows max_len + 1 characters", _generate(steps="range(max_len + 1)")),
    Mistake("generate", "stops-at-first-eos", "stops every name when the first one ends", _generate(stop="done.any()")),
    # ---------------------------------------------------------------- fused_lstm_forward
    Mistake("fused_lstm_forward", "not-fused", "computes the input product inside the loop (right values, "
            "2T products)", _fused(pre="None", step="x[:, t] @ weight_ih.T + bias_ih + bias_hh + h @ weight_hh.T")),
    Mistake("fused_lstm_forward", "gates-i-f-o-g", "reads the gates in the order i, f, o, g", _fused(chunks="i, f, o, g")),
    Mistake("fused_lstm_forward", "one-bias", "adds only bias_ih", _fused(pre="x @ weight_ih.T + bias_ih")),
    Mistake("fused_lstm_forward", "returns-initial-state", "returns the state it started from",
            _fused(final="(h0, c0)")),
]
