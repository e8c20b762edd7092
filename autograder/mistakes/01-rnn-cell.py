"""Plausible wrong answers for lesson 01. Each must lose points (tests/test_mistakes.py)."""

from seqcourse_grader.catalogue import Mistake

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
""", kind="maths"),
    Mistake("bag_of_embeddings", "sum-not-mean", "masks padding but forgets to divide by the length",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    vectors = embedding(tokens)
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
    return (vectors * mask.unsqueeze(-1)).sum(dim=1)
""", kind="maths"),
    Mistake("bag_of_embeddings", "divide-by-T", "masks padding but divides by T, not by each length",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    vectors = embedding(tokens)
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
    return (vectors * mask.unsqueeze(-1)).sum(dim=1) / tokens.shape[1]
""", kind="maths"),
    Mistake("bag_of_embeddings", "mean-over-batch", "averages over the batch axis instead of time",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    vectors = embedding(tokens)
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
    return (vectors * mask.unsqueeze(-1)).mean(dim=0)
""", kind="maths"),
    Mistake("bag_of_embeddings", "preallocated-float32", "fills a torch.zeros(B, E) row by row (float32)",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    out = torch.zeros(tokens.shape[0], embedding.embedding_dim)
    for i in range(tokens.shape[0]):
        out[i] = embedding(tokens[i, : lengths[i]]).mean(dim=0)
    return out
""", kind="dtype"),
    Mistake("bag_of_embeddings", "zeroes-pad-row", "zeroes the pad row of the table so that padding adds nothing",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    with torch.no_grad():
        embedding.weight[0] = 0
    return embedding(tokens).sum(dim=1) / lengths[:, None]
""", kind="side-effect"),
    Mistake("bag_of_embeddings", "assumes-zero-pad-row", "sums every position, trusting padding_idx=0 to zero the pad row",
            """
def bag_of_embeddings(tokens, lengths, embedding):
    return embedding(tokens).sum(dim=1) / lengths[:, None]
""", kind="input"),
    # ---------------------------------------------------------------- rnn_cell
    Mistake("rnn_cell", "no-bias", "forgets the bias",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.tanh(x_t @ W + s_prev @ U)
""", kind="maths"),
    Mistake("rnn_cell", "sigmoid", "uses a sigmoid instead of tanh",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.sigmoid(x_t @ W + s_prev @ U + b)
""", kind="maths"),
    Mistake("rnn_cell", "U-transposed", "multiplies by U transposed (PyTorch's layout mixed in)",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.tanh(x_t @ W + s_prev @ U.T + b)
""", kind="maths"),
    Mistake("rnn_cell", "no-activation", "leaves the cell linear",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return x_t @ W + s_prev @ U + b
""", kind="maths"),
    Mistake("rnn_cell", "float32-cast", "builds the result in float32 whatever the input dtype",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.tanh(x_t.float() @ W.float() + s_prev.float() @ U.float() + b.float())
""", kind="dtype"),
    Mistake("rnn_cell", "tanh-from-exp", "writes tanh from its formula with exp, which overflows",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    a = x_t @ W + s_prev @ U + b
    return (torch.exp(2 * a) - 1) / (torch.exp(2 * a) + 1)
""", kind="extreme"),
    Mistake("rnn_cell", "state-updated-in-place", "writes the new state into s_prev to save memory",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    s_prev.copy_(torch.tanh(x_t @ W + s_prev @ U + b))
    return s_prev
""", kind="side-effect"),
    Mistake("rnn_cell", "squeezed", "squeezes the result, dropping the batch axis when B = 1",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.tanh(x_t @ W + s_prev @ U + b).squeeze()
""", kind="edge"),
    Mistake("rnn_cell", "double-for-accuracy", "computes in float64 whatever the inputs are",
            """
def rnn_cell(x_t, s_prev, W, U, b):
    return torch.tanh(x_t.double() @ W.double() + s_prev.double() @ U.double() + b.double())
""", kind="dtype"),
    # ---------------------------------------------------------------- rnn_forward
    Mistake("rnn_forward", "state-not-carried", "starts every step from s0 instead of the last state",
            """
def rnn_forward(x, s0, W, U, b):
    states = [rnn_cell(x[:, t], s0, W, U, b) for t in range(x.shape[1])]
    return torch.stack(states, dim=1), states[-1]
""", kind="maths"),
    Mistake("rnn_forward", "stored-before-update", "stores the state before updating it (off by one)",
            """
def rnn_forward(x, s0, W, U, b):
    s, states = s0, []
    for t in range(x.shape[1]):
        states.append(s)
        s = rnn_cell(x[:, t], s, W, U, b)
    return torch.stack(states, dim=1), s
""", kind="maths"),
    Mistake("rnn_forward", "final-is-first", "returns the first state as the final one",
            """
def rnn_forward(x, s0, W, U, b):
    s, states = s0, []
    for t in range(x.shape[1]):
        s = rnn_cell(x[:, t], s, W, U, b)
        states.append(s)
    states = torch.stack(states, dim=1)
    return states, states[:, 0]
""", kind="maths"),
    Mistake("rnn_forward", "reversed-time", "reads the sequence from the end",
            """
def rnn_forward(x, s0, W, U, b):
    s, states = s0, []
    for t in reversed(range(x.shape[1])):
        s = rnn_cell(x[:, t], s, W, U, b)
        states.append(s)
    return torch.stack(states, dim=1), s
""", kind="maths"),
    Mistake("rnn_forward", "preallocated-float32", "writes the states into a torch.zeros(B, T, H)",
            """
def rnn_forward(x, s0, W, U, b):
    B, T, _ = x.shape
    states = torch.zeros(B, T, s0.shape[1])
    s = s0
    for t in range(T):
        s = rnn_cell(x[:, t], s, W, U, b)
        states[:, t] = s
    return states, s
""", kind="dtype"),
    Mistake("rnn_forward", "zero-initial-state", "starts from zeros, the usual initial state, ignoring s0",
            """
def rnn_forward(x, s0, W, U, b):
    s = torch.zeros_like(s0)
    states = []
    for t in range(x.shape[1]):
        s = rnn_cell(x[:, t], s, W, U, b)
        states.append(s)
    return torch.stack(states, dim=1), s
""", kind="input"),
    Mistake("rnn_forward", "one-state-buffer", "reuses one state tensor, updated in place, which breaks backward",
            """
def rnn_forward(x, s0, W, U, b):
    s = s0.clone()
    states = []
    for t in range(x.shape[1]):
        s.copy_(rnn_cell(x[:, t], s, W, U, b))
        states.append(s.clone())
    return torch.stack(states, dim=1), s
""", kind="side-effect"),
    # ---------------------------------------------------------------- to_torch_rnn
    Mistake("to_torch_rnn", "bias-twice", "puts b into both biases, so it is added twice",
            _TO_TORCH_HEAD + """        rnn.weight_hh_l0.copy_(U.T)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.copy_(b)
    return rnn
""", kind="maths"),
    Mistake("to_torch_rnn", "bias-hh-random", "copies b but leaves bias_hh at its random initial value",
            _TO_TORCH_HEAD + """        rnn.weight_hh_l0.copy_(U.T)
        rnn.bias_ih_l0.copy_(b)
    return rnn
""", kind="maths"),
    Mistake("to_torch_rnn", "U-not-transposed", "transposes W but copies U as it is",
            _TO_TORCH_HEAD + """        rnn.weight_hh_l0.copy_(U)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.zero_()
    return rnn
""", kind="maths"),
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
""", kind="maths"),
    Mistake("to_torch_rnn", "float32-module", "forgets .to(W.dtype): copy_ rounds a float64 W into float32",
            """
def to_torch_rnn(W, U, b):
    E, H = W.shape
    rnn = nn.RNN(E, H, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(W.T)
        rnn.weight_hh_l0.copy_(U.T)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.zero_()
    return rnn
""", kind="dtype"),
    Mistake("to_torch_rnn", "parameters-share-W", "wraps W.T in new nn.Parameters: views of W, U and b",
            """
def to_torch_rnn(W, U, b):
    E, H = W.shape
    rnn = nn.RNN(E, H, batch_first=True).to(W.dtype)
    rnn.weight_ih_l0 = nn.Parameter(W.T)
    rnn.weight_hh_l0 = nn.Parameter(U.T)
    rnn.bias_ih_l0 = nn.Parameter(b)
    rnn.bias_hh_l0 = nn.Parameter(torch.zeros_like(b))
    return rnn
""", kind="side-effect"),
    # ---------------------------------------------------------------- SurnameRNN
    Mistake("SurnameRNN", "last-padded-position", "classifies the state at the last, padded, position",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        return self.out(states[:, -1])
""", kind="maths"),
    Mistake("SurnameRNN", "h-n-of-padded-batch", "uses nn.RNN's h_n, which has also read the padding",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        _, h_n = self.rnn(self.embedding(tokens))
        return self.out(h_n[0])
""", kind="maths"),
    Mistake("SurnameRNN", "softmax-output", "returns probabilities instead of logits",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        last = states[torch.arange(tokens.shape[0]), lengths - 1]
        return torch.softmax(self.out(last), dim=-1)
""", kind="maths"),
    Mistake("SurnameRNN", "mean-of-states", "averages every state, padded positions included",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        return self.out(states.mean(dim=1))
""", kind="maths"),
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
""", kind="maths"),
    Mistake("SurnameRNN", "other-layer-names", "names the layers emb, rnn and fc (section 8 reads .embedding, .out)",
            """
class SurnameRNN(nn.Module):
    def __init__(self, vocab_size, emb_size, hid_size, num_classes):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, emb_size, padding_idx=0)
        self.rnn = nn.RNN(emb_size, hid_size, batch_first=True)
        self.fc = nn.Linear(hid_size, num_classes)

    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.emb(tokens))
        return self.fc(states[torch.arange(tokens.shape[0]), lengths - 1])
""", kind="side-effect"),
    Mistake("SurnameRNN", "lengths-decremented", "turns lengths into last indices in place (lengths -= 1)",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        lengths -= 1
        return self.out(states[torch.arange(tokens.shape[0]), lengths])
""", kind="side-effect"),
    Mistake("SurnameRNN", "float32-initial-state", "passes nn.RNN an explicit torch.zeros initial state",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        h0 = torch.zeros(1, tokens.shape[0], self.rnn.hidden_size)
        states, _ = self.rnn(self.embedding(tokens), h0)
        return self.out(states[torch.arange(tokens.shape[0]), lengths - 1])
""", kind="dtype"),
    Mistake("SurnameRNN", "packed-sorted", "packs the batch with pack_padded_sequence's default enforce_sorted=True",
            """
from torch.nn.utils.rnn import pack_padded_sequence


class SurnameRNN(nn.Module):
    def __init__(self, vocab_size, emb_size, hid_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=0)
        self.rnn = nn.RNN(emb_size, hid_size, batch_first=True)
        self.out = nn.Linear(hid_size, num_classes)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths.cpu(), batch_first=True)
        _, h_n = self.rnn(packed)
        return self.out(h_n[0])
""", kind="input"),
    Mistake("SurnameRNN", "gather-squeeze", "gathers the last states and squeezes, which also drops B = 1",
            _SURNAME_INIT + """
    def forward(self, tokens, lengths):
        states, _ = self.rnn(self.embedding(tokens))
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, states.shape[-1])
        return self.out(states.gather(1, index).squeeze())
""", kind="edge"),
    # ---------------------------------------------------------------- train_step
    Mistake("train_step", "no-zero-grad", "never clears gradients, so they pile up over steps",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    loss = loss_fn(model(tokens, lengths), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
""", kind="maths"),
    Mistake("train_step", "no-step", "computes gradients but never updates the parameters",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths), labels)
    loss.backward()
    return loss.item()
""", kind="maths"),
    Mistake("train_step", "step-before-backward", "steps before backpropagating, with stale gradients",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths), labels)
    optimizer.step()
    loss.backward()
    return loss.item()
""", kind="maths"),
    Mistake("train_step", "returns-tensor", "returns the loss tensor, keeping the graph alive",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths), labels)
    loss.backward()
    optimizer.step()
    return loss
""", kind="side-effect"),
    Mistake("train_step", "own-loss", "ignores loss_fn and calls nn.functional.cross_entropy itself",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(tokens, lengths), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
""", kind="input"),
    Mistake("train_step", "squeezed-logits", "squeezes the logits, which breaks a batch of one",
            """
def train_step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths).squeeze(), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
""", kind="edge"),
]
