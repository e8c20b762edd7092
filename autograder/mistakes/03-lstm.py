"""Plausible wrong answers for lesson 03, each filed under its class (``kind``). Each must lose points in
its own exercise and nowhere else (tests/test_mistakes.py)."""

from seqcourse_grader.catalogue import Mistake

_INIT = """
class LSTMCellScratch(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        self.bias_ih = nn.Parameter(torch.empty(4 * H))
        self.bias_hh = nn.Parameter(torch.empty(4 * H))
        for p in self.parameters():
            nn.init.uniform_(p, -1 / H ** 0.5, 1 / H ** 0.5)

    def forward(self, x, state=None):
        if state is None:
            zeros = {zeros}
            state = (zeros, zeros)
        h, c = {state}
"""


def _cell(chunks="i, f, g, o", gates="x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh",
          c="torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)",
          h="torch.sigmoid(o) * torch.tanh(c)", zeros="x.new_zeros(x.shape[0], self.hidden_size)", state="state",
          helpers=""):
    """The LSTM cell with one line replaceable; the defaults give the right answer."""
    return helpers + _INIT.format(zeros=zeros, state=state) + f"""        {chunks} = ({gates}).chunk(4, dim=1)
        c = {c}
        h = {h}
        return h, c
"""


def _gru(body):
    return """
def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
""" + body


_GRU_SPLIT = """    xr, xz, xn = (x @ weight_ih.T + bias_ih).chunk(3, dim=1)
    hr, hz, hn = (h @ weight_hh.T + bias_hh).chunk(3, dim=1)
"""

def _v1997(chunks="i, g, o", c="c + torch.sigmoid(i) * torch.tanh(g)"):
    """The 1997 cell with one line changed; the defaults give the right answer."""
    return f"""
def lstm1997_cell(x, state, weight_ih, weight_hh, bias):
    h, c = state
    {chunks} = (x @ weight_ih.T + h @ weight_hh.T + bias).chunk(3, dim=1)
    c = {c}
    return torch.sigmoid(o) * torch.tanh(c), c
"""


def _peephole(i="peep[0] * c_prev", f="peep[1] * c_prev", o="peep[2] * c"):
    """The peephole cell with its peephole terms replaceable; the defaults give the right answer."""
    return f"""
def peephole_lstm_cell(x, state, weight_ih, weight_hh, bias, peep):
    h, c_prev = state
    i, f, g, o = (x @ weight_ih.T + h @ weight_hh.T + bias).chunk(4, dim=1)
    i = torch.sigmoid(i + {i})
    f = torch.sigmoid(f + {f})
    c = f * c_prev + i * torch.tanh(g)
    o = torch.sigmoid(o + {o})
    return o * torch.tanh(c), c
"""


def _forget(body):
    return """
def init_forget_bias(lstm, value):
    H = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
""" + body + """    return lstm
"""


_HAND_TANH = """
def tanh(z):
    return (torch.exp(2 * z) - 1) / (torch.exp(2 * z) + 1)
"""

_HAND_SIGMOID = """
def sigmoid(z):
    return torch.exp(z) / (1 + torch.exp(z))
"""


def _forward(body, signature="def lstm_forward(cell, x, state=None):"):
    return "\n" + signature + "\n" + body


MISTAKES = [
    # ---------------------------------------------------------------- LSTMCellScratch
    Mistake("LSTMCellScratch", "uninitialised-parameters", "creates the parameters with torch.empty and never "
            "initialises them (the tests that copy weights in cannot see it)",
            _cell().replace("        for p in self.parameters():\n            nn.init.uniform_(p, -1 / H ** 0.5, 1 / H ** 0.5)\n", ""),
            kind="input"),
    Mistake("LSTMCellScratch", "gates-i-f-o-g", "reads the gates in the order i, f, o, g", _cell(chunks="i, f, o, g"),
            kind="maths"),
    Mistake("LSTMCellScratch", "forget-on-candidate", "applies the forget gate to the new candidate",
            _cell(c="torch.sigmoid(i) * c + torch.sigmoid(f) * torch.tanh(g)"), kind="maths"),
    Mistake("LSTMCellScratch", "no-tanh-on-cell", "shows the raw cell state: h = o * c", _cell(h="torch.sigmoid(o) * c"),
            kind="maths"),
    Mistake("LSTMCellScratch", "sigmoid-candidate", "squashes the candidate with a sigmoid, not tanh",
            _cell(c="torch.sigmoid(f) * c + torch.sigmoid(i) * torch.sigmoid(g)"), kind="maths"),
    Mistake("LSTMCellScratch", "one-bias", "adds only bias_ih",
            _cell(gates="x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T"), kind="maths"),
    Mistake("LSTMCellScratch", "float32-zero-state", "makes the default state with torch.zeros(B, H), float32 "
            "whatever the input", _cell(zeros="torch.zeros(x.shape[0], self.hidden_size)"), kind="dtype"),
    Mistake("LSTMCellScratch", "state-ignored", "always starts from zeros, even when a state is given",
            _cell(state="x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size)"),
            kind="input"),
    Mistake("LSTMCellScratch", "weight-ih-square", "copies the weight_hh line for weight_ih: (4H, H), right only "
            "when E = H", _cell().replace("torch.empty(4 * H, input_size)", "torch.empty(4 * H, H)"), kind="edge"),
    Mistake("LSTMCellScratch", "tanh-by-hand", "writes tanh from its definition, (e^2z - 1) / (e^2z + 1)",
            _cell(helpers=_HAND_TANH, c="torch.sigmoid(f) * c + torch.sigmoid(i) * tanh(g)",
                  h="torch.sigmoid(o) * tanh(c)"), kind="extreme"),
    Mistake("LSTMCellScratch", "cell-state-in-place", "updates the cell state in place to save memory",
            _cell(c="c.mul_(torch.sigmoid(f)).add_(torch.sigmoid(i) * torch.tanh(g))"), kind="side-effect"),
    # ---------------------------------------------------------------- lstm_forward
    Mistake("lstm_forward", "cell-states-as-outputs", "collects the cell states c instead of h", _forward("""
    outputs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        outputs.append(state[1])
    return torch.stack(outputs, dim=1), state
"""), kind="maths"),
    Mistake("lstm_forward", "state-not-carried", "restarts every step from the initial state", _forward("""
    outputs = []
    for t in range(x.shape[1]):
        new_state = cell(x[:, t], state)
        outputs.append(new_state[0])
    return torch.stack(outputs, dim=1), new_state
"""), kind="maths"),
    Mistake("lstm_forward", "returns-initial-state", "returns the state it was given as the final one", _forward("""
    outputs, current = [], state
    for t in range(x.shape[1]):
        current = cell(x[:, t], current)
        outputs.append(current[0])
    if state is None:
        zeros = x.new_zeros(x.shape[0], outputs[0].shape[1])
        state = (zeros, zeros)
    return torch.stack(outputs, dim=1), state
"""), kind="maths"),
    Mistake("lstm_forward", "float32-outputs", "writes the steps into a preallocated torch.zeros(B, T, H)", _forward("""
    B, T, _ = x.shape
    outputs = torch.zeros(B, T, cell.hidden_size)
    for t in range(T):
        state = cell(x[:, t], state)
        outputs[:, t] = state[0]
    return outputs, state
"""), kind="dtype"),
    Mistake("lstm_forward", "given-state-ignored", "starts from zeros whatever state it is given", _forward("""
    outputs, current = [], None
    for t in range(x.shape[1]):
        current = cell(x[:, t], current)
        outputs.append(current[0])
    return torch.stack(outputs, dim=1), current
"""), kind="input"),
    Mistake("lstm_forward", "squeezed-final-state", "squeezes the final state, as if removing nn.LSTM's layer axis",
            _forward("""
    outputs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        outputs.append(state[0])
    h, c = state
    return torch.stack(outputs, dim=1), (h.squeeze(), c.squeeze())
"""), kind="edge"),
    Mistake("lstm_forward", "detached-state", "detaches the state between steps, as truncated BPTT would", _forward("""
    outputs = []
    for t in range(x.shape[1]):
        h, c = cell(x[:, t], state)
        outputs.append(h)
        state = (h.detach(), c.detach())
    return torch.stack(outputs, dim=1), (h, c)
"""), kind="side-effect"),
    # ---------------------------------------------------------------- lstm_variants
    Mistake("lstm_variants", "1997-overwrites-memory", "the 1997 cell replaces its memory: c = i * g",
            _v1997(c="torch.sigmoid(i) * torch.tanh(g)") + _peephole(), kind="maths"),
    Mistake("lstm_variants", "1997-blocks-i-o-g", "reads the 1997 blocks in the order i, o, g",
            _v1997(chunks="i, o, g") + _peephole(), kind="maths"),
    Mistake("lstm_variants", "output-peeks-at-old-cell", "the output gate looks at c_{t-1} instead of c_t",
            _v1997() + _peephole(o="peep[2] * c_prev"), kind="maths"),
    Mistake("lstm_variants", "peepholes-swapped", "gives the input gate the forget gate's peephole",
            _v1997() + _peephole(i="peep[1] * c_prev", f="peep[0] * c_prev"), kind="maths"),
    Mistake("lstm_variants", "peephole-on-h", "lets the gates peek at h instead of the cell state",
            _v1997() + _peephole(i="peep[0] * h", f="peep[1] * h", o="peep[2] * h"), kind="maths"),
    Mistake("lstm_variants", "peep-columns", "reads the peepholes as columns of peep (a transpose)",
            _v1997() + _peephole(i="peep[:, 0] * c_prev", f="peep[:, 1] * c_prev", o="peep[:, 2] * c"), kind="maths"),
    Mistake("lstm_variants", "1997-adds-in-place", "adds to the memory in place: c += i * g",
            _v1997(c="c.add_(torch.sigmoid(i) * torch.tanh(g))") + _peephole(), kind="side-effect"),
    Mistake("lstm_variants", "1997-tanh-by-hand", "writes tanh from its definition in the 1997 cell",
            _HAND_TANH + _v1997(c="c + torch.sigmoid(i) * tanh(g)").replace(
                "torch.sigmoid(o) * torch.tanh(c)", "torch.sigmoid(o) * tanh(c)") + _peephole(), kind="extreme"),
    # ---------------------------------------------------------------- gru_cell
    Mistake("gru_cell", "reset-before-product", "applies the reset gate to h before the product (the paper's form)",
            _gru(_GRU_SPLIT + """    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    H = h.shape[1]
    n = torch.tanh(xn + (r * h) @ weight_hh[2 * H:].T + bias_hh[2 * H:])
    return (1 - z) * n + z * h
"""), kind="maths"),
    Mistake("gru_cell", "update-flipped", "mixes the other way round: z * n + (1 - z) * h",
            _gru(_GRU_SPLIT + """    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return z * n + (1 - z) * h
"""), kind="maths"),
    Mistake("gru_cell", "gates-z-r", "reads the blocks in the order z, r, n",
            """
def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    xz, xr, xn = (x @ weight_ih.T + bias_ih).chunk(3, dim=1)
    hz, hr, hn = (h @ weight_hh.T + bias_hh).chunk(3, dim=1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h
""", kind="maths"),
    Mistake("gru_cell", "reset-on-all-of-n", "resets the input part of n too", _gru(_GRU_SPLIT + """    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(r * (xn + hn))
    return (1 - z) * n + z * h
"""), kind="maths"),
    Mistake("gru_cell", "sigmoid-by-hand", "writes the sigmoid as e^z / (1 + e^z)", _HAND_SIGMOID + _gru(_GRU_SPLIT + """    r = sigmoid(xr + hr)
    z = sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h
"""), kind="extreme"),
    Mistake("gru_cell", "mixes-into-h-in-place", "mixes the new state into h in place", _gru(_GRU_SPLIT + """    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return h.mul_(z).add_((1 - z) * n)
"""), kind="side-effect"),
    # ---------------------------------------------------------------- init_forget_bias
    Mistake("init_forget_bias", "input-gate-slice", "sets rows 0:H, the input gate", _forget("""            if name.startswith("bias_ih"):
                p[:H] = value
            elif name.startswith("bias_hh"):
                p[:H] = 0.0
"""), kind="maths"),
    Mistake("init_forget_bias", "value-in-both-biases", "puts value in both biases, so the gate sees twice it", _forget("""            if name.startswith("bias_"):
                p[H:2 * H] = value
"""), kind="maths"),
    Mistake("init_forget_bias", "first-layer-only", "handles only layer 0", _forget("""            if name == "bias_ih_l0":
                p[H:2 * H] = value
            elif name == "bias_hh_l0":
                p[H:2 * H] = 0.0
"""), kind="edge"),
    Mistake("init_forget_bias", "whole-bias", "overwrites every row of the biases", _forget("""            if name.startswith("bias_ih"):
                p.fill_(value)
            elif name.startswith("bias_hh"):
                p.zero_()
"""), kind="maths"),
    Mistake("init_forget_bias", "layers-by-index", "walks the layers by index, which misses the _reverse biases", """
def init_forget_bias(lstm, value):
    H = lstm.hidden_size
    with torch.no_grad():
        for k in range(lstm.num_layers):
            getattr(lstm, f"bias_ih_l{k}")[H:2 * H] = value
            getattr(lstm, f"bias_hh_l{k}")[H:2 * H] = 0.0
    return lstm
""", kind="edge"),
    Mistake("init_forget_bias", "generator-walked-twice", "walks named_parameters() twice, but a generator runs once", """
def init_forget_bias(lstm, value):
    H = lstm.hidden_size
    params = lstm.named_parameters()
    ih = [p for name, p in params if name.startswith("bias_ih")]
    hh = [p for name, p in params if name.startswith("bias_hh")]
    with torch.no_grad():
        for p in ih:
            p[H:2 * H] = value
        for p in hh:
            p[H:2 * H] = 0.0
    return lstm
""", kind="input"),
    Mistake("init_forget_bias", "new-float32-parameters", "rebuilds each bias from a list as a new nn.Parameter", """
def init_forget_bias(lstm, value):
    H = lstm.hidden_size
    for name, p in list(lstm.named_parameters()):
        if name.startswith("bias_"):
            rows = p.tolist()
            rows[H:2 * H] = [value if name.startswith("bias_ih") else 0.0] * H
            setattr(lstm, name, nn.Parameter(torch.tensor(rows)))
    return lstm
""", kind="dtype"),
    Mistake("init_forget_bias", "frozen-biases", "switches requires_grad off to allow the assignment, and leaves it off", """
def init_forget_bias(lstm, value):
    H = lstm.hidden_size
    for name, p in lstm.named_parameters():
        if name.startswith("bias_"):
            p.requires_grad_(False)
            p[H:2 * H] = value if name.startswith("bias_ih") else 0.0
    return lstm
""", kind="side-effect"),
]
