"""Plausible wrong answers for lesson 02. Each must lose points (tests/test_mistakes.py)."""

from seqcourse_grader.catalogue import Mistake


def _bptt(carry: str = "delta_a @ U.T", delta_a: str = "delta * (1 - states[:, t] ** 2)",
          du_state: str = "s_prev", ds0: str = "carried") -> str:
    """A BPTT answer with one line changed; the defaults give the right answer."""
    return f"""
def bptt(x, s0, W, U, b, states, grad_states):
    T = x.shape[1]
    dW, dU, db = torch.zeros_like(W), torch.zeros_like(U), torch.zeros_like(b)
    carried = torch.zeros_like(s0)
    for t in reversed(range(T)):
        delta = grad_states[:, t] + carried
        delta_a = {delta_a}
        s_prev = states[:, t - 1] if t > 0 else s0
        dW += x[:, t].T @ delta_a
        dU += {du_state}.T @ delta_a
        db += delta_a.sum(dim=0)
        carried = {carry}
    return dW, dU, db, {ds0}
"""


def _norms(body_step: str = "s = torch.tanh(x[:, t] @ W + s @ U + b)", loss: str = "states[-1].sum()",
           read: str = "states[-1 - k].grad.norm()") -> str:
    return f"""
def lag_gradient_norms(x, s0, W, U, b):
    s, states = s0.detach().clone().requires_grad_(), []
    for t in range(x.shape[1]):
        {body_step}
        s.retain_grad()
        states.append(s)
    ({loss}).backward()
    return torch.stack([{read} for k in range(len(states))]).detach()
"""


def _clip(total: str = "torch.sqrt(sum((g ** 2).sum() for g in grads))",
          factor: str = "torch.clamp(max_norm / (total + 1e-6), max=1.0)",
          grads: str = "[p.grad for p in parameters if p.grad is not None]",
          returned: str = "total") -> str:
    return f"""
def clip_grad_norm(parameters, max_norm):
    grads = {grads}
    total = {total}
    factor = {factor}
    for g in grads:
        g.mul_(factor)
    return {returned}
"""


MISTAKES = [
    # ---------------------------------------------------------------- bptt
    Mistake("bptt", "no-tanh-derivative", "forgets to multiply by tanh' = 1 - s_t^2",
            _bptt(delta_a="delta"), kind="maths"),
    Mistake("bptt", "derivative-of-previous-state", "takes tanh' at the previous state",
            _bptt(delta_a="delta * (1 - (states[:, t - 1] if t > 0 else s0) ** 2)"), kind="maths"),
    Mistake("bptt", "no-carry", "never carries the gradient to earlier steps (truncated to one step)",
            _bptt(carry="torch.zeros_like(s0)"), kind="maths"),
    Mistake("bptt", "dU-with-current-state", "multiplies by s_t instead of s_{t-1} for dU",
            _bptt(du_state="states[:, t]"), kind="maths"),
    Mistake("bptt", "carry-without-transpose", "carries delta_a @ U instead of delta_a @ U.T",
            _bptt(carry="delta_a @ U"), kind="maths"),
    Mistake("bptt", "float32-accumulators", "starts the gradients from torch.zeros(shape), which is float32",
            """
def bptt(x, s0, W, U, b, states, grad_states):
    T = x.shape[1]
    dW, dU, db = torch.zeros(W.shape), torch.zeros(U.shape), torch.zeros(b.shape)
    carried = torch.zeros_like(s0)
    for t in reversed(range(T)):
        delta = grad_states[:, t] + carried
        delta_a = delta * (1 - states[:, t] ** 2)
        s_prev = states[:, t - 1] if t > 0 else s0
        dW += x[:, t].T @ delta_a
        dU += s_prev.T @ delta_a
        db += delta_a.sum(dim=0)
        carried = delta_a @ U.T
    return dW, dU, db, carried
""", kind="dtype"),
    Mistake("bptt", "zero-state-before-first-step", "takes zeros as the state before the first step, not s0",
            _bptt().replace("if t > 0 else s0", "if t > 0 else torch.zeros_like(s0)"), kind="input"),
    Mistake("bptt", "delta-view-accumulated", "adds the carried gradient into a view of grad_states",
            _bptt().replace("delta = grad_states[:, t] + carried",
                            "delta = grad_states[:, t]\n        delta += carried"), kind="side-effect"),
    # ---------------------------------------------------------------- lag_gradient_norms
    Mistake("lag_gradient_norms", "first-state-first", "orders the norms from the first state, not the last",
            _norms(read="states[k].grad.norm()"), kind="maths"),
    Mistake("lag_gradient_norms", "norm-of-states", "measures the states instead of their gradients",
            _norms(read="states[-1 - k].norm()"), kind="maths"),
    Mistake("lag_gradient_norms", "loss-on-every-state", "sums every state into the loss, not only the last",
            _norms(loss="torch.stack(states).sum()"), kind="maths"),
    Mistake("lag_gradient_norms", "detached-history", "detaches the state at each step (truncated BPTT)",
            _norms(body_step="s = torch.tanh(x[:, t] @ W + s.detach() @ U + b)"), kind="maths"),
    Mistake("lag_gradient_norms", "norms-as-floats", "collects the norms as Python floats in torch.tensor",
            _norms(read="states[-1 - k].grad.norm().item()").replace("torch.stack(", "torch.tensor("),
            kind="dtype"),
    Mistake("lag_gradient_norms", "s0-requires-grad", "switches on requires_grad of the caller's s0",
            _norms().replace("s0.detach().clone().requires_grad_()", "s0.requires_grad_()"), kind="side-effect"),
    Mistake("lag_gradient_norms", "zero-initial-state", "starts from a zero state instead of the given s0",
            _norms().replace("s0.detach().clone().requires_grad_()",
                             "torch.zeros_like(s0).requires_grad_()"), kind="input"),
    # ---------------------------------------------------------------- clip_grad_norm
    Mistake("clip_grad_norm", "per-tensor", "clips each tensor to max_norm on its own",
            """
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    for g in grads:
        g.mul_(torch.clamp(max_norm / (g.norm() + 1e-6), max=1.0))
    return total
""", kind="maths"),
    Mistake("clip_grad_norm", "no-clamp", "also scales small gradients up to max_norm",
            _clip(factor="max_norm / (total + 1e-6)"), kind="maths"),
    Mistake("clip_grad_norm", "sum-of-norms", "adds the tensors' norms instead of their squares",
            _clip(total="sum(g.norm() for g in grads)"), kind="maths"),
    Mistake("clip_grad_norm", "returns-clipped-norm", "returns the norm after clipping",
            _clip(returned="torch.sqrt(sum((g ** 2).sum() for g in grads))"), kind="maths"),
    Mistake("clip_grad_norm", "none-grads", "assumes every parameter has a gradient",
            _clip(grads="[p.grad for p in parameters]"), kind="input"),
    Mistake("clip_grad_norm", "generator-twice", "goes through parameters twice (a generator is empty the second time)",
            """
def clip_grad_norm(parameters, max_norm):
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in parameters if p.grad is not None))
    factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for p in parameters:
        if p.grad is not None:
            p.grad.mul_(factor)
    return total
""", kind="input"),
    Mistake("clip_grad_norm", "total-from-floats", "adds the squares up as Python floats, then makes a tensor",
            _clip(total="torch.tensor(math.sqrt(sum(float((g ** 2).sum()) for g in grads)))"), kind="dtype"),
    Mistake("clip_grad_norm", "normalise-then-cap", "divides by the total, then scales to the capped length",
            """
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    for g in grads:
        g.div_(total).mul_(torch.clamp(total, max=max_norm))
    return total
""", kind="extreme"),
    Mistake("clip_grad_norm", "fills-missing-grads", "gives parameters without a gradient a zero one",
            """
def clip_grad_norm(parameters, max_norm):
    parameters = list(parameters)
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in parameters]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(factor)
    return total
""", kind="side-effect"),
    # ---------------------------------------------------------------- adding_problem
    Mistake("adding_problem", "markers-anywhere", "draws both markers anywhere (they may even coincide)",
            """
def adding_problem(n, T, generator):
    values = torch.rand(n, T, generator=generator)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, torch.randint(0, T, (n,), generator=generator)] = 1
    markers[rows, torch.randint(0, T, (n,), generator=generator)] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
""", kind="maths"),
    Mistake("adding_problem", "sum-of-all-values", "targets the sum of every value",
            """
def adding_problem(n, T, generator):
    values = torch.rand(n, T, generator=generator)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, torch.randint(0, T // 2, (n,), generator=generator)] = 1
    markers[rows, torch.randint(T // 2, T, (n,), generator=generator)] = 1
    return torch.stack([values, markers], dim=-1), values.sum(dim=1)
""", kind="maths"),
    Mistake("adding_problem", "global-rng", "ignores the generator and uses the global random state",
            """
def adding_problem(n, T, generator):
    values = torch.rand(n, T)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, torch.randint(0, T // 2, (n,))] = 1
    markers[rows, torch.randint(T // 2, T, (n,))] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
""", kind="input"),
    Mistake("adding_problem", "fixed-first-marker", "always puts the first marker at position 0",
            """
def adding_problem(n, T, generator):
    values = torch.rand(n, T, generator=generator)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[:, 0] = 1
    markers[rows, torch.randint(T // 2, T, (n,), generator=generator)] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
""", kind="maths"),
    Mistake("adding_problem", "float64-values", "draws the values in float64 for precision",
            """
def adding_problem(n, T, generator):
    values = torch.rand(n, T, generator=generator, dtype=torch.float64)
    markers = torch.zeros(n, T, dtype=torch.float64)
    rows = torch.arange(n)
    markers[rows, torch.randint(0, T // 2, (n,), generator=generator)] = 1
    markers[rows, torch.randint(T // 2, T, (n,), generator=generator)] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
""", kind="dtype"),
    Mistake("adding_problem", "randint-inclusive", "takes torch.randint's upper bound as inclusive",
            """
def adding_problem(n, T, generator):
    values = torch.rand(n, T, generator=generator)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, torch.randint(0, T // 2 - 1, (n,), generator=generator)] = 1
    markers[rows, torch.randint(T // 2, T - 1, (n,), generator=generator)] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
""", kind="edge"),
    Mistake("adding_problem", "fresh-generator", "draws from a fresh generator with the given one's seed, "
            "so the generator is never advanced and every call returns the same batch", """
def adding_problem(n, T, generator):
    generator = torch.Generator().manual_seed(generator.initial_seed())
    values = torch.rand(n, T, generator=generator)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, torch.randint(0, T // 2, (n,), generator=generator)] = 1
    markers[rows, torch.randint(T // 2, T, (n,), generator=generator)] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
""", kind="input"),
    Mistake("adding_problem", "second-half-even", "draws the second marker below 2 * (T // 2): for odd T it never "
            "reaches the last position", """
def adding_problem(n, T, generator):
    values = torch.rand(n, T, generator=generator)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, torch.randint(0, T // 2, (n,), generator=generator)] = 1
    markers[rows, torch.randint(T // 2, 2 * (T // 2), (n,), generator=generator)] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
""", kind="edge"),
    Mistake("adding_problem", "reseeds-torch", "calls torch.manual_seed for reproducibility",
            """
def adding_problem(n, T, generator):
    torch.manual_seed(0)
    values = torch.rand(n, T, generator=generator)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, torch.randint(0, T // 2, (n,), generator=generator)] = 1
    markers[rows, torch.randint(T // 2, T, (n,), generator=generator)] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
""", kind="side-effect"),
    # ---------------------------------------------------------------- delay_task
    Mistake("delay_task", "future-not-past", "asks for the symbol lag steps ahead instead of behind",
            """
def delay_task(n, T, lag, num_symbols, generator):
    x = torch.randint(0, num_symbols, (n, T), generator=generator)
    y = torch.full((n, T), -100, dtype=torch.long)
    y[:, : T - lag] = x[:, lag:]
    return x, y
""", kind="maths"),
    Mistake("delay_task", "off-by-one", "shifts by lag - 1",
            """
def delay_task(n, T, lag, num_symbols, generator):
    x = torch.randint(0, num_symbols, (n, T), generator=generator)
    y = torch.full((n, T), -100, dtype=torch.long)
    y[:, lag - 1:] = x[:, : T - lag + 1]
    return x, y
""", kind="maths"),
    Mistake("delay_task", "zeros-not-ignored", "fills the first targets with 0, which the loss then trains on",
            """
def delay_task(n, T, lag, num_symbols, generator):
    x = torch.randint(0, num_symbols, (n, T), generator=generator)
    y = torch.zeros((n, T), dtype=torch.long)
    y[:, lag:] = x[:, : T - lag]
    return x, y
""", kind="maths"),
    Mistake("delay_task", "global-rng", "ignores the generator",
            """
def delay_task(n, T, lag, num_symbols, generator):
    x = torch.randint(0, num_symbols, (n, T))
    y = torch.full((n, T), -100, dtype=torch.long)
    y[:, lag:] = x[:, : T - lag]
    return x, y
""", kind="input"),
    Mistake("delay_task", "float-targets", "fills the targets with -100.0, a float",
            """
def delay_task(n, T, lag, num_symbols, generator):
    x = torch.randint(0, num_symbols, (n, T), generator=generator)
    y = torch.full((n, T), -100.0)
    y[:, lag:] = x[:, : T - lag]
    return x, y
""", kind="dtype"),
    Mistake("delay_task", "negative-slice", "slices x[:, :-lag], which is empty for lag 0",
            """
def delay_task(n, T, lag, num_symbols, generator):
    x = torch.randint(0, num_symbols, (n, T), generator=generator)
    y = torch.full((n, T), -100, dtype=torch.long)
    y[:, lag:] = x[:, :-lag]
    return x, y
""", kind="edge"),
]
