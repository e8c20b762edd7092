"""Plausible wrong answers for lesson 01. Each must lose points (tests/test_mistakes.py)."""

from seqcourse.grading.mistakes import Mistake

# Shared openings of several wrong answers below; only what follows them differs.
_SURNAME_INIT = """
class SurnameRNN(nn.Module):
    def __init__(self, vocab_size, emb_size, hid_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=0)
        self.rnn = nn.RNN(emb_size, hid_size, batch_first=True)
        self.out = nn.Linear(hid_size, num_classes)
"""
_TO_TORCH_HEAD = """
def to_torch_rnn(W, U, b):
    E, H = W.shape
    rnn = nn.RNN(E, H, batch_first=True).to(W.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(W.T)
"""

MISTAKES = [
    # ---------------------------------------------------------------- bag_of_embeddings
    Mistake("bag_of_embeddings", "mean-over-padding", "averages over all T positions, padding included",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    return embedding(tokens).mean(dim=1)
"""),
    Mistake("bag_of_embeddings", "sum-not-mean", "masks padding but forgets to divide by the length",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    vectors = embedding(tokens)
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
    return (vectors * mask.unsqueeze(-1)).sum(dim=1)
"""),
    Mistake("bag_of_embeddings", "divide-by-T", "masks padding but divides by T, not by each length",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    vectors = embedding(tokens)
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
    return (vectors * mask.unsqueeze(-1)).sum(dim=1) / tokens.shape[1]
"""),
    Mistake("bag_of_embeddings", "mean-over-batch", "averages over the batch axis instead of time",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    vectors = embedding(tokens)
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
    return (vectors * mask.unsqueeze(-1)).mean(dim=0)
"""),
    # ---------------------------------------------------------------- rnn_cell
    Mistake("rnn_cell", "no-bias", "forgets the bias",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.tanh(x_t @ W + s_prev @ U)
"""),
    Mistake("rnn_cell", "sigmoid", "uses a sigmoid instead of tanh",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.sigmoid(x_t @ W + s_prev @ U + b)
"""),
    Mistake("rnn_cell", "U-transposed", "multiplies by U transposed (PyTorch's layout mixed in)",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.tanh(x_t @ W + s_prev @ U.T + b)
"""),
    Mistake("rnn_cell", "no-activation", "leaves the cell linear",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return x_t @ W + s_prev @ U + b
"""),
    Mistake("rnn_cell", "float32-cast", "builds the result in float32 whatever the input dtype",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.tanh(x_t.float() @ W.float() + s_prev.float() @ U.float() + b.float())
"""),
    # ---------------------------------------------------------------- rnn_forward
    Mistake("rnn_forward", "state-not-carried", "starts every step from s0 instead of the last state",
            """
def rnn_forward(x, s0, W, U, b):
    states = [rnn_cell(x[:, t], s0, W, U, b) for t in range(x.shape[1])]
    return torch.stack(states, dim=1), states[-1]
"""),
    Mistake("rnn_forward", "stored-before-update", "stores the state before updating it (off by one)",
            """
def rnn_forward(x, s0, W, U, b):
    s, states = s0, []
    for t in range(x.shape[1]):
        states.append(s)
        s = rnn_cell(x[:, t], s, W, U, b)
    return torch.stack(states, dim=1), s
"""),
    Mistake("rnn_forward", "final-is-first", "returns the first state as the final one",
            """
def rnn_forward(x, s0, W, U, b):
    s, states = s0, []
    for t in range(x.shape[1]):
        s = rnn_cell(x[:, t], s, W, U, b)
        states.append(s)
    states = torch.stack(states, dim=1)
    return states, states[:, 0]
"""),
    Mistake("rnn_forward", "reversed-time", "reads the sequence from the end",
            """
def rnn_forward(x, s0, W, U, b):
    s, states = s0, []
    for t in reversed(range(x.shape[1])):
        s = rnn_cell(x[:, t], s, W, U, b)
        states.append(s)
    return torch.stack(states, dim=1), s
"""),
    # ---------------------------------------------------------------- to_torch_rnn
    Mistake("to_torch_rnn", "bias-twice", "puts b into both biases, so it is added twice",
            _TO_TORCH_HEAD + """        rnn.weight_hh_l0.copy_(U.T)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.copy_(b)
    return rnn
"""),
    Mistake("to_torch_rnn", "bias-hh-random", "copies b but leaves bias_hh at its random initial value",
            _TO_TORCH_HEAD + """        rnn.weight_hh_l0.copy_(U.T)
        rnn.bias_ih_l0.copy_(b)
    return rnn
"""),
    Mistake("to_torch_rnn", "U-not-transposed", "transposes W but copies U as it is",
            _TO_TORCH_HEAD + """        rnn.weight_hh_l0.copy_(U)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.zero_()
    return rnn
"""),
    Mistake("to_torch_rnn", "not-batch-first", "forgets batch_first=True, so (B, T, E) is read as (T, B, E)",
            """
def to_torch_rnn(W, U, b):
    E, H = W.shape
    rnn = nn.RNN(E, H).to(W.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(W.T)
        rnn.weight_hh_l0.copy_(U.T)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.zero_()
    return rnn
"""),
    # ---------------------------------------------------------------- SurnameRNN
    Mistake("SurnameRNN", "last-padded-position", "classifies the state at the last, padded, position",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        return self.out(states[:, -1])
"""),
    Mistake("SurnameRNN", "h-n-of-padded-batch", "uses nn.RNN's h_n, which has also read the padding",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        _, h_n = self.rnn(self.embedding(tokens))
        return self.out(h_n[0])
"""),
    Mistake("SurnameRNN", "softmax-output", "returns probabilities instead of logits",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        last = states[torch.arange(tokens.shape[0]), lengths - 1]
        return torch.softmax(self.out(last), dim=-1)
"""),
    Mistake("SurnameRNN", "mean-of-states", "averages every state, padded positions included",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        return self.out(states.mean(dim=1))
"""),
    Mistake("SurnameRNN", "bag-no-rnn", "skips the RNN: a bag of embeddings, blind to order",
            """
class SurnameRNN(nn.Module):
    def __init__(self, vocab_size, emb_size, hid_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=0)
        self.out = nn.Linear(emb_size, num_classes)

    def forward(self, tokens, lengths):
        summed = self.embedding(tokens).sum(dim=1)
        return self.out(summed / lengths[:, None])
"""),
    # ---------------------------------------------------------------- train_step
    Mistake("train_step", "no-zero-grad", "never clears gradients, so they pile up over steps",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    loss = loss_fn(model(tokens, lengths), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    Mistake("train_step", "no-step", "computes gradients but never updates the parameters",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths), labels)
    loss.backward()
    return loss.item()
"""),
    Mistake("train_step", "step-before-backward", "steps before backpropagating, with stale gradients",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths), labels)
    optimizer.step()
    loss.backward()
    return loss.item()
"""),
    Mistake("train_step", "returns-tensor", "returns the loss tensor, keeping the graph alive",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths), labels)
    loss.backward()
    optimizer.step()
    return loss
"""),
]
