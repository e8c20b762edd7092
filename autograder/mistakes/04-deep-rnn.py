"""Plausible wrong answers for lesson 04, each filed under its class (``kind``). Each must lose points in
its own exercise and nowhere else (tests/test_mistakes.py)."""

from seqcourse_grader.catalogue import Mistake

_MASK = """
def length_mask(lengths, T):
    return torch.arange(T, device=lengths.device)[None, :] {op} lengths[:, None]
"""


def _layer(op="<", order="reversed(range(T)) if reverse else range(T)", keep="torch.where(m, h_new, h)",
           keep_c="torch.where(m, c_new, c)", out="torch.where(m, h_new, torch.zeros_like(h_new))",
           zeros="x.new_zeros(B, cell.hidden_size)", step_mask="mask[:, t, None]", prepare=""):
    """The masked layer with one line replaceable; the defaults give the right answer."""
    return _MASK.format(op=op) + f"""

def lstm_layer(cell, x, lengths, reverse=False):
    B, T, _ = x.shape
    mask = length_mask(lengths.to(x.device), T){prepare}
    h = {zeros}
    c = {zeros}
    outputs = [None] * T
    for t in {order}:
        h_new, c_new = cell(x[:, t], (h, c))
        m = {step_mask}
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
             draw="torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)",
             guard="top_k is not None and top_k < logits.shape[-1]"):
    return f"""
def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {{temperature}}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {{top_k}}")
    {scale}
    if {guard}:
        kth = {kth}
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return {draw}
"""


def _generate(start="vocab.bos_id", language="language_id", steps="range(max_len)",
              call="model.step(prev, languages, state)", record="torch.where(done, vocab.eos_id, prev)",
              stop="done.all()", decode="vocab.decode(row)", grad="torch.no_grad()", after_call="", ids=""):
    return f"""
def generate(model, vocab, language_id, num, max_len=20, temperature=1.0, top_k=None,
             generator=None):
    device = next(model.parameters()).device
    prev = torch.full((num,), {start}, dtype=torch.long, device=device)
    languages = torch.full((num,), {language}, dtype=torch.long, device=device)
    state, done, chars = None, torch.zeros(num, dtype=torch.bool, device=device), []
    with {grad}:
        for _ in {steps}:
            logits, state = {call}{after_call}
            prev = sample_next(logits.cpu(), temperature, top_k, generator).to(device)
            done = done | (prev == vocab.eos_id)
            chars.append({record})
            if {stop}:
                break
    ids = torch.stack(chars, dim=1){ids}.tolist()
    return [{decode} for row in ids]
"""


def _fused(pre="x @ weight_ih.T + (bias_ih + bias_hh)", step="x_gates[:, t] + h @ weight_hh.T",
           chunks="i, f, g, o", final="(h, c)", zeros="(x.new_zeros(B, H), x.new_zeros(B, H))",
           c="torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)", h="torch.sigmoid(o) * torch.tanh(c)",
           helpers=""):
    return helpers + f"""
def fused_lstm_forward(x, weight_ih, weight_hh, bias_ih, bias_hh, state=None):
    B, T, _ = x.shape
    H = weight_hh.shape[1]
    h, c = state if state is not None else {zeros}
    h0, c0 = h, c
    x_gates = {pre}
    outputs = []
    for t in range(T):
        gates = {step}
        {chunks} = gates.chunk(4, dim=1)
        c = {c}
        h = {h}
        outputs.append(h)
    return torch.stack(outputs, dim=1), {final}
"""


MISTAKES = [
    # ---------------------------------------------------------------- lstm_layer
    Mistake("lstm_layer", "mask-off-by-one", "counts position t = length as real: t <= length", _layer(op="<="), kind="maths"),
    Mistake("lstm_layer", "no-mask", "lets padded steps update the state (lesson 01's forward-only habit)",
            _layer(keep="h_new", keep_c="c_new", out="h_new"), kind="maths"),
    Mistake("lstm_layer", "padded-outputs-carry-state", "masks the state but outputs h at padded steps",
            _layer(out="h"), kind="maths"),
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
""", kind="maths"),
    Mistake("lstm_layer", "backward-outputs-in-loop-order", "leaves the backward outputs in the order "
            "they were computed (reversed in time)", _layer().replace(
                "outputs[t] = torch.where", "outputs[T - 1 - t if reverse else t] = torch.where"), kind="maths"),
    # ---------------------------------------------------------------- StackedBiLSTM
    Mistake("StackedBiLSTM", "directions-swapped-for-next-layer", "feeds the next layer [backward; forward]",
            _stack(concat="outputs[::-1]"), kind="maths"),
    Mistake("StackedBiLSTM", "states-direction-major", "orders h_n as all forward layers, then all backward",
            _stack(finals="(torch.stack(hs[0::D] + hs[1::D]), torch.stack(cs[0::D] + cs[1::D]))"), kind="maths"),
    Mistake("StackedBiLSTM", "backward-uses-forward-cell", "runs both directions with the forward cell",
            _stack(cell="self.cells[layer * D]"), kind="maths"),
    Mistake("StackedBiLSTM", "every-layer-reads-input", "feeds the original input to every layer",
            _stack(feed="x"), kind="maths"),
    # ---------------------------------------------------------------- packed_lstm
    Mistake("packed_lstm", "no-packing", "runs the LSTM on the padded tensor", """
def packed_lstm(lstm, x, lengths, state=None):
    return lstm(x, state)
""", kind="maths"),
    Mistake("packed_lstm", "enforce-sorted", "keeps enforce_sorted=True, which needs lengths sorted", """
def packed_lstm(lstm, x, lengths, state=None):
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True)
    packed_out, (h_n, c_n) = lstm(packed, state)
    outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
    return outputs, (h_n, c_n)
""", kind="input"),
    Mistake("packed_lstm", "no-total-length", "unpacks to the longest length, not the input's T", """
def packed_lstm(lstm, x, lengths, state=None):
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_out, (h_n, c_n) = lstm(packed, state)
    outputs, _ = pad_packed_sequence(packed_out, batch_first=True)
    return outputs, (h_n, c_n)
""", kind="edge"),
    Mistake("packed_lstm", "states-from-padded-run", "packs for the outputs but takes h_n from a padded run", """
def packed_lstm(lstm, x, lengths, state=None):
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_out, _ = lstm(packed, state)
    outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
    return outputs, lstm(x, state)[1]
""", kind="maths"),
    # ---------------------------------------------------------------- SurnameBiLSTM
    Mistake("SurnameBiLSTM", "functional-dropout-always-on", "applies F.dropout(features, p) without "
            "training=self.training, so dropout stays on in eval mode",
            _classifier(result="self.out(F.dropout(features, p=self.dropout.p))"), kind="side-effect"),
    Mistake("SurnameBiLSTM", "first-layer-states", "classifies from layer 0's states h_n[0], h_n[1]",
            _classifier(features="torch.cat([h_n[0], h_n[1]], dim=-1)"), kind="maths"),
    Mistake("SurnameBiLSTM", "last-padded-output", "takes outputs[:, -1], a padded position for short names",
            _classifier(run="outputs, _ = packed_lstm(self.lstm, self.embedding(tokens), lengths)",
                        features="outputs[:, -1]"), kind="edge"),
    Mistake("SurnameBiLSTM", "forward-direction-only", "uses only the top forward state",
            _classifier(out_size="hid_size", features="h_n[-2]"), kind="maths"),
    Mistake("SurnameBiLSTM", "no-packing", "runs the LSTM on the padded batch",
            _classifier(run="_, (h_n, _) = self.lstm(self.embedding(tokens))"), kind="maths"),
    Mistake("SurnameBiLSTM", "softmax-output", "returns probabilities instead of logits",
            _classifier(result="torch.softmax(self.out(self.dropout(features)), dim=-1)"), kind="maths"),
    Mistake("SurnameBiLSTM", "one-layer", "builds a one-layer LSTM",
            _classifier(lstm="nn.LSTM(emb_size, hid_size, bidirectional=True, batch_first=True)"), kind="maths"),
    # ---------------------------------------------------------------- sample_next
    Mistake("sample_next", "temperature-after-softmax", "divides the probabilities, not the logits, by the "
            "temperature (multinomial renormalises: no effect)",
            _sampler(draw="torch.multinomial(torch.softmax(logits, dim=-1) / temperature, 1, "
                          "generator=generator).squeeze(1)", scale="pass"), kind="maths"),
    Mistake("sample_next", "temperature-multiplies", "multiplies the logits by the temperature",
            _sampler(scale="logits = logits * temperature"), kind="maths"),
    Mistake("sample_next", "top-k-plus-one", "keeps k + 1 tokens: compares with the (k+1)-th largest",
            _sampler(kth="logits.topk(min(top_k + 1, logits.shape[-1]), dim=-1).values[:, -1:]"), kind="maths"),
    Mistake("sample_next", "greedy", "takes the argmax instead of sampling",
            _sampler(draw="logits.argmax(dim=-1)"), kind="maths"),
    Mistake("sample_next", "ignores-generator", "draws from the global random state",
            _sampler(draw="torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(1)"), kind="side-effect"),
    Mistake("sample_next", "in-place", "divides the caller's logits in place",
            _sampler(scale="logits /= temperature"), kind="side-effect"),
    Mistake("sample_next", "fast-path-in-place", "skips the division at temperature 1, then masks the caller's "
            "logits in place for top-k", _sampler(
                scale="logits = logits if temperature == 1 else logits / temperature",
                kth="logits.topk(top_k, dim=-1).values[:, -1:]\n        logits[logits < kth] = float('-inf')"),
            kind="side-effect"),
    # ---------------------------------------------------------------- generate
    Mistake("generate", "starts-from-padding", "feeds the padding id first, not <bos>", _generate(start="vocab.pad_id"), kind="maths"),
    Mistake("generate", "goes-on-after-eos", "keeps every character sampled after a name's <eos>",
            _generate(record="prev", decode="vocab.decode(row, stop_at_eos=False)"), kind="maths"),
    Mistake("generate", "fresh-state", "forgets the state between steps",
            _generate(call="model.step(prev, languages, None)"), kind="input"),
    Mistake("generate", "language-ignored", "always asks for language 0", _generate(language="0"), kind="maths"),
    Mistake("generate", "max-len-plus-one", "allows max_len + 1 characters", _generate(steps="range(max_len + 1)"), kind="maths"),
    Mistake("generate", "stops-at-first-eos", "stops every name when the first one ends", _generate(stop="done.any()"), kind="maths"),
    # ---------------------------------------------------------------- fused_lstm_forward
    Mistake("fused_lstm_forward", "not-fused", "computes the input product inside the loop (right values, "
            "2T products)", _fused(pre="None", step="x[:, t] @ weight_ih.T + bias_ih + bias_hh + h @ weight_hh.T"), kind="maths"),
    Mistake("fused_lstm_forward", "gates-i-f-o-g", "reads the gates in the order i, f, o, g", _fused(chunks="i, f, o, g"), kind="maths"),
    Mistake("fused_lstm_forward", "one-bias", "adds only bias_ih", _fused(pre="x @ weight_ih.T + bias_ih"), kind="maths"),
    Mistake("fused_lstm_forward", "returns-initial-state", "returns the state it started from",
            _fused(final="(h0, c0)"), kind="maths"),

    # ---------------------------------------------------------------- more classes (issue "mistakes nobody listed")
    Mistake("lstm_layer", "float32-zero-state", "starts from torch.zeros(B, H), float32 whatever the input",
            _layer(zeros="torch.zeros(B, cell.hidden_size)"), kind="dtype"),
    Mistake("lstm_layer", "assumes-sorted", "loops only up to lengths[0], as if the longest name came first", _MASK.format(op="<") + """

def lstm_layer(cell, x, lengths, reverse=False):
    B, T, _ = x.shape
    mask = length_mask(lengths.to(x.device), T)
    h = x.new_zeros(B, cell.hidden_size)
    c = x.new_zeros(B, cell.hidden_size)
    longest = int(lengths[0])
    outputs = [x.new_zeros(B, cell.hidden_size) for _ in range(T)]
    for t in (reversed(range(longest)) if reverse else range(longest)):
        h_new, c_new = cell(x[:, t], (h, c))
        m = mask[:, t, None]
        h = torch.where(m, h_new, h)
        c = torch.where(m, c_new, c)
        outputs[t] = torch.where(m, h_new, torch.zeros_like(h_new))
    return torch.stack(outputs, dim=1), (h, c)
""", kind="input"),
    Mistake("lstm_layer", "mask-without-trailing-axis", "picks with mask[:, t], shape (B,), which broadcasts over H "
            "(it runs when B = H)", _layer(step_mask="mask[:, t]"), kind="edge"),
    Mistake("lstm_layer", "zeroes-padding-in-place", "cleans the padding of x in place first",
            _layer(prepare="\n    x[~mask] = 0"), kind="side-effect"),
    Mistake("StackedBiLSTM", "input-size-hard-coded-2H", "sizes every upper layer for two directions",
            _stack().replace("input_size if layer == 0 else D * hidden_size", "input_size if layer == 0 else 2 * hidden_size"),
            kind="edge"),
    Mistake("StackedBiLSTM", "top-layer-states-only", "returns only the top layer's final states",
            _stack(finals="(torch.stack(hs[-D:]), torch.stack(cs[-D:]))"), kind="edge"),
    Mistake("packed_lstm", "state-dropped", "never passes the given state to the LSTM", """
def packed_lstm(lstm, x, lengths, state=None):
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_out, (h_n, c_n) = lstm(packed)
    outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
    return outputs, (h_n, c_n)
""", kind="input"),
    Mistake("SurnameBiLSTM", "squeezed-logits", "squeezes the logits, so one name gives (C,)",
            _classifier(result="self.out(self.dropout(features)).squeeze()"), kind="edge"),
    Mistake("SurnameBiLSTM", "h_n-reshaped", "reshapes h_n[-2:] (2, B, H) to (B, 2H) without a transpose",
            _classifier(features="h_n[-2:].reshape(tokens.shape[0], -1)"), kind="maths"),
    Mistake("sample_next", "softmax-by-hand", "writes the softmax as exp(l) / sum exp(l)",
            _sampler(draw="torch.multinomial(logits.exp() / logits.exp().sum(-1, keepdim=True), 1, "
                          "generator=generator).squeeze(1)"), kind="extreme"),
    Mistake("sample_next", "top-k-unguarded", "asks topk for top_k values even when top_k > V",
            _sampler(guard="top_k is not None"), kind="edge"),
    Mistake("generate", "gradients-on", "steps the model without torch.no_grad()", _generate(grad="torch.enable_grad()"),
            kind="side-effect"),
    Mistake("generate", "squeezed-ids", "squeezes the ids, so one name becomes a flat list", _generate(ids=".squeeze()"),
            kind="edge"),
    Mistake("generate", "state-assumed-pair", "detaches the state as if it were an LSTM's (h, c) pair",
            _generate(after_call="\n            state = tuple(s.detach() for s in state)"), kind="input"),
    Mistake("fused_lstm_forward", "float32-zero-state", "makes the default state with torch.zeros(B, H)",
            _fused(zeros="(torch.zeros(B, H), torch.zeros(B, H))"), kind="dtype"),
    Mistake("fused_lstm_forward", "state-in-place", "updates the cell state in place",
            _fused(c="c.mul_(torch.sigmoid(f)).add_(torch.sigmoid(i) * torch.tanh(g))"), kind="side-effect"),
    Mistake("fused_lstm_forward", "tanh-by-hand", "writes tanh from its definition, (e^2z - 1) / (e^2z + 1)",
            _fused(helpers="""
def tanh(z):
    return (torch.exp(2 * z) - 1) / (torch.exp(2 * z) + 1)
""", c="torch.sigmoid(f) * c + torch.sigmoid(i) * tanh(g)", h="torch.sigmoid(o) * tanh(c)"), kind="extreme"),
]
