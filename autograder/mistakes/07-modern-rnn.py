"""Plausible wrong answers for lesson 07, each filed under its class (``kind``). Each must lose points in
its own exercise and nowhere else (tests/test_mistakes.py)."""

from seqcourse_grader.catalogue import Mistake


def _la(parallel_mask="torch.ones(T, T, dtype=torch.bool, device=q.device).tril()",
        parallel_return="(scores @ v) / scores.sum(dim=-1, keepdim=True)",
        parallel_scores="phi(q) @ phi(k).transpose(1, 2)",
        zero_state="q.new_zeros(B, d_k, v.shape[-1]), q.new_zeros(B, d_k)", given="state",
        update="S = S + fk.unsqueeze(-1) * v[:, t].unsqueeze(1)\n        z = z + fk",
        read="numerator = (fq.unsqueeze(1) @ S).squeeze(1)\n        outputs.append(numerator / (fq * z).sum(dim=-1, keepdim=True))",
        finish="return torch.stack(outputs, dim=1), (S, z)", start="outputs = []"):
    """Both forms of linear attention with one part replaceable; the defaults give the right answer."""
    return f"""
def linear_attention_parallel(q, k, v):
    T = q.shape[1]
    scores = {parallel_scores}
    causal = {parallel_mask}
    scores = scores.masked_fill(~causal, 0.0)
    return {parallel_return}


def linear_attention_recurrent(q, k, v, state=None):
    B, T, d_k = k.shape
    if state is None:
        S, z = {zero_state}
    else:
        S, z = {given}
    {start}
    for t in range(T):
        fq, fk = phi(q[:, t]), phi(k[:, t])
        {update}
        {read}
    {finish}
"""


_LOOP = """
def mingru_loop(gate, cand, h0=None):
    z, candidate = torch.sigmoid(gate), g(cand)
    h = h0 if h0 is not None else gate.new_zeros(gate.shape[0], gate.shape[2])
    states = []
    for z_t, c_t in zip(z.unbind(dim=1), candidate.unbind(dim=1)):   # each step's slice, made once
        h = (1 - z_t) * h + z_t * c_t
        states.append(h)
    return torch.stack(states, dim=1)
"""


def _scan(log_a="-F.softplus(gate)", log_b="-F.softplus(-gate) + log_g(cand)",
          h0_part="""    if h0 is not None:
        log_a = torch.cat([torch.zeros_like(log_a[:, :1]), log_a], dim=1)
        log_b = torch.cat([torch.log(h0).unsqueeze(1), log_b], dim=1)
""", a_star="torch.cumsum(log_a, dim=1)", h="torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))",
          finish="return h[:, 1:] if h0 is not None else h", loop=_LOOP, head=""):
    """The minGRU cell (loop and scan) with one part of the scan replaceable; defaults: the right answer."""
    return loop + f"""

def mingru_scan(gate, cand, h0=None):
{head}    log_a = {log_a}
    log_b = {log_b}
{h0_part}    a_star = {a_star}
    h = {h}
    {finish}
"""


def _slstm(fresh="zeros = x.new_zeros(x.shape[0], weight_hh.shape[1])\n        "
                 "state = (zeros, zeros, zeros, torch.full_like(zeros, float('-inf')))",
           chunks="i_, f_, z_, o_", log_f="F.logsigmoid(f_)", m_new="torch.maximum(log_f + m, i_)",
           i="torch.exp(i_ - m_new)", f="torch.exp(log_f + m - m_new)", c="f * c + i * torch.tanh(z_)",
           n="f * n + i", h="torch.sigmoid(o_) * c / n", finish="return h, c, n, m_new"):
    """The sLSTM cell with one line replaceable; the defaults give the right answer."""
    return f"""
def slstm_cell(x, state, weight_ih, weight_hh, bias):
    if state is None:
        {fresh}
    h, c, n, m = state
    {chunks} = (x @ weight_ih.T + h @ weight_hh.T + bias).chunk(4, dim=1)
    log_f = {log_f}
    m_new = {m_new}
    i = {i}
    f = {f}
    c = {c}
    n = {n}
    h = {h}
    {finish}
"""


def _match(count="sum(p.numel() for p in model.parameters() if p.requires_grad)",
           build="with torch.random.fork_rng(devices=[]):\n            model = make_model(H)",
           search="""    low, high = 1, max_hidden
    while low < high:
        mid = (low + high) // 2
        if count(mid) < target:
            low = mid + 1
        else:
            high = mid
""", pick="""    if low > 1 and abs(count(low - 1) - target) <= abs(count(low) - target):
        low -= 1
    return low
"""):
    """match_hidden with one part replaceable; the defaults give the right answer."""
    return f"""
def match_hidden(make_model, target, max_hidden=1024):
    def count(H):
        {build}
        return {count}

{search}{pick}"""


MISTAKES = [
    # ---------------------------------------------------------------- linear_attention
    Mistake("linear_attention", "no-causal-mask", "lets every position see the whole sequence (no mask)",
            _la(parallel_mask="torch.ones(T, T, dtype=torch.bool, device=q.device)"), kind="maths"),
    Mistake("linear_attention", "mask-upper-triangle", "keeps the upper triangle: each position sees the future",
            _la(parallel_mask="torch.ones(T, T, dtype=torch.bool, device=q.device).triu()"), kind="maths"),
    Mistake("linear_attention", "normaliser-before-mask", "divides by the row sums of the unmasked scores",
            _la(parallel_return="(scores @ v) / (phi(q) @ phi(k).transpose(1, 2)).sum(dim=-1, keepdim=True)"),
            kind="maths"),
    Mistake("linear_attention", "softmax-similarity", "keeps the softmax's exp(q . k) in the parallel form",
            _la(parallel_scores="torch.exp(q @ k.transpose(1, 2))"), kind="maths"),
    Mistake("linear_attention", "read-before-update", "reads y_t from S_{t-1}, before adding step t",
            _la(update="numerator = (fq.unsqueeze(1) @ S).squeeze(1)\n        "
                       "outputs.append(numerator / (fq * z).sum(dim=-1, keepdim=True))",
                read="S = S + fk.unsqueeze(-1) * v[:, t].unsqueeze(1)\n        z = z + fk"), kind="maths"),
    Mistake("linear_attention", "state-transposed", "builds S as v_t phi(k_t)^T, (d_v, d_k), and reads it from the "
            "other side", _la(zero_state="q.new_zeros(B, v.shape[-1], d_k), q.new_zeros(B, d_k)",
                              update="S = S + v[:, t].unsqueeze(-1) * fk.unsqueeze(1)\n        z = z + fk",
                              read="numerator = (S @ fq.unsqueeze(-1)).squeeze(-1)\n        "
                                   "outputs.append(numerator / (fq * z).sum(dim=-1, keepdim=True))"), kind="maths"),
    Mistake("linear_attention", "no-normaliser", "returns phi(q_t)^T S_t without dividing by phi(q_t)^T z_t",
            _la(read="numerator = (fq.unsqueeze(1) @ S).squeeze(1)\n        outputs.append(numerator)"), kind="maths"),
    Mistake("linear_attention", "eps-in-normaliser", "adds 1e-6 to the normaliser, as some published code does",
            _la(parallel_return="(scores @ v) / (scores.sum(dim=-1, keepdim=True) + 1e-6)",
                read="numerator = (fq.unsqueeze(1) @ S).squeeze(1)\n        "
                     "outputs.append(numerator / ((fq * z).sum(dim=-1, keepdim=True) + 1e-6))"), kind="extreme"),
    Mistake("linear_attention", "float32-outputs", "writes the outputs into a preallocated torch.zeros(B, T, d_v)",
            _la(start="outputs = torch.zeros(B, T, v.shape[-1])",
                read="numerator = (fq.unsqueeze(1) @ S).squeeze(1)\n        "
                     "outputs[:, t] = numerator / (fq * z).sum(dim=-1, keepdim=True)",
                finish="return outputs, (S, z)"), kind="dtype"),
    Mistake("linear_attention", "given-state-ignored", "always starts from zeros, even when a state is given",
            _la(given="q.new_zeros(B, d_k, v.shape[-1]), q.new_zeros(B, d_k)"), kind="input"),
    Mistake("linear_attention", "squeezed-read", "squeezes the read-out with .squeeze(), which also drops B = 1",
            _la(read="numerator = (fq.unsqueeze(1) @ S).squeeze()\n        "
                     "outputs.append(numerator / (fq * z).sum(dim=-1, keepdim=True).squeeze())"), kind="edge"),
    Mistake("linear_attention", "state-added-in-place", "adds to the state in place: S += phi(k) v^T",
            _la(update="S += fk.unsqueeze(-1) * v[:, t].unsqueeze(1)\n        z += fk"), kind="side-effect"),
    # ---------------------------------------------------------------- mingru
    Mistake("mingru", "loop-update-flipped", "mixes the other way round in the loop: z h + (1 - z) g(cand)",
            _scan(loop=_LOOP.replace("(1 - z_t) * h + z_t * c_t", "z_t * h + (1 - z_t) * c_t")), kind="maths"),
    Mistake("mingru", "scan-exclusive-cumsum", "sums log a over the steps before t only (an exclusive cumsum)",
            _scan(a_star="torch.cumsum(log_a, dim=1) - log_a"), kind="maths"),
    Mistake("mingru", "scan-wrong-axis", "runs the scan along the last axis (H) instead of time",
            _scan(a_star="torch.cumsum(log_a, dim=-1)",
                  h="torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=-1))"), kind="maths"),
    Mistake("mingru", "scan-log-of-sigmoid", "takes the logs of the gates as torch.log(torch.sigmoid(...))",
            _scan(log_a="torch.log(1 - torch.sigmoid(gate))", log_b="torch.log(torch.sigmoid(gate)) + log_g(cand)"),
            kind="extreme"),
    Mistake("mingru", "scan-h0-ignored", "leaves h0 out of the scan, as if it were always zero",
            _scan(h0_part="", finish="return h"), kind="input"),
    Mistake("mingru", "loop-float32-states", "writes the loop's states into a preallocated torch.zeros(B, T, H)",
            _scan(loop="""
def mingru_loop(gate, cand, h0=None):
    z, candidate = torch.sigmoid(gate), g(cand)
    B, T, H = gate.shape
    h = h0 if h0 is not None else gate.new_zeros(B, H)
    states = torch.zeros(B, T, H)
    for t in range(T):
        h = (1 - z[:, t]) * h + z[:, t] * candidate[:, t]
        states[:, t] = h
    return states
"""), kind="dtype"),
    Mistake("mingru", "scan-sigmoid-in-place", "turns the gate into z in place to save memory",
            _scan(head="    z = gate.sigmoid_()\n", log_a="torch.log1p(-z)", log_b="torch.log(z) + log_g(cand)"),
            kind="side-effect"),
    Mistake("mingru", "scan-constant-a-star", "computes a* under torch.no_grad(), as a constant",
            _scan(a_star="torch.cumsum(log_a, dim=1).detach()"), kind="side-effect"),
    Mistake("mingru", "scan-squeezed", "squeezes the scan's result, which drops B = 1 and H = 1",
            _scan(finish="return (h[:, 1:] if h0 is not None else h).squeeze()"), kind="edge"),
    # ---------------------------------------------------------------- slstm_cell
    Mistake("slstm_cell", "no-stabiliser", "uses exp(i~) and sigmoid(f~) as they are, and passes m through",
            _slstm(m_new="m", i="torch.exp(i_)", f="torch.sigmoid(f_)"), kind="extreme"),
    Mistake("slstm_cell", "exponential-forget", "takes log f = f~ (an exponential forget gate)",
            _slstm(log_f="f_"), kind="maths"),
    Mistake("slstm_cell", "f-without-old-m", "forgets m_{t-1} in f': exp(log f - m_t)",
            _slstm(f="torch.exp(log_f - m_new)"), kind="maths"),
    Mistake("slstm_cell", "no-normaliser", "shows the cell state: h = o * c", _slstm(h="torch.sigmoid(o_) * c"),
            kind="maths"),
    Mistake("slstm_cell", "m-starts-at-zero", "starts the stabiliser at 0 instead of -inf",
            _slstm(fresh="zeros = x.new_zeros(x.shape[0], weight_hh.shape[1])\n        "
                         "state = (zeros, zeros, zeros, zeros)"), kind="input"),
    Mistake("slstm_cell", "float32-fresh-state", "makes the fresh state with torch.zeros(B, H), float32 whatever x is",
            _slstm(fresh="zeros = torch.zeros(x.shape[0], weight_hh.shape[1])\n        "
                         "state = (zeros, zeros, zeros, torch.full_like(zeros, float('-inf')))"), kind="dtype"),
    Mistake("slstm_cell", "state-sized-like-x", "sizes the fresh state like x, (B, E), right only when E = H",
            _slstm(fresh="zeros = torch.zeros_like(x)\n        "
                         "state = (zeros, zeros, zeros, torch.full_like(zeros, float('-inf')))"), kind="edge"),
    Mistake("slstm_cell", "log-of-sigmoid-forget", "takes log f = torch.log(torch.sigmoid(f~)), -inf once f~ "
            "saturates (the text asks for F.logsigmoid)", _slstm(log_f="torch.log(torch.sigmoid(f_))"), kind="extreme"),
    Mistake("slstm_cell", "cell-updated-in-place", "updates c and n in place",
            _slstm(c="c.mul_(f).add_(i * torch.tanh(z_))", n="n.mul_(f).add_(i)"), kind="side-effect"),
    # ---------------------------------------------------------------- match_hidden
    Mistake("match_hidden", "target-truncated", "takes the target as an int, so 42.5 becomes 42",
            _match(search="""    target = int(target)
    low, high = 1, max_hidden
    while low < high:
        mid = (low + high) // 2
        if count(mid) < target:
            low = mid + 1
        else:
            high = mid
"""), kind="input"),
    Mistake("match_hidden", "counts-tensors", "counts the parameter tensors, not the numbers in them",
            _match(count="len(list(model.parameters()))"), kind="maths"),
    Mistake("match_hidden", "counts-frozen", "counts every parameter, trainable or not",
            _match(count="sum(p.numel() for p in model.parameters())"), kind="input"),
    Mistake("match_hidden", "counts-per-module", "adds up the parameters of every module, so nested ones count twice",
            _match(count="sum(p.numel() for m in model.modules() for p in m.parameters() if p.requires_grad)"),
            kind="maths"),
    Mistake("match_hidden", "tie-to-larger", "breaks a tie towards the larger H",
            _match(pick="""    if low > 1 and abs(count(low - 1) - target) < abs(count(low) - target):
        low -= 1
    return low
"""), kind="edge"),
    Mistake("match_hidden", "max-hidden-excluded", "searches range(1, max_hidden), which leaves out max_hidden",
            _match(search="""    low, high = 1, max(1, max_hidden - 1)
    while low < high:
        mid = (low + high) // 2
        if count(mid) < target:
            low = mid + 1
        else:
            high = mid
"""), kind="edge"),
    Mistake("match_hidden", "random-state-used", "builds the models without restoring torch's random state",
            _match(build="model = make_model(H)"), kind="side-effect"),
    Mistake("match_hidden", "walks-up-one-by-one", "tries H = 1, 2, 3, ... until the count reaches the target",
            _match(search="""    low = 1
    while low < max_hidden and count(low) < target:
        low += 1
"""), kind="side-effect"),
    Mistake("match_hidden", "returns-count", "returns the parameter count of the best size instead of the size",
            _match(pick="""    if low > 1 and abs(count(low - 1) - target) <= abs(count(low) - target):
        low -= 1
    return count(low)
"""), kind="maths"),
]
