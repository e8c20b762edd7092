"""Hidden tests of lesson 06, "Attention"."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqcourse.checks import check_close, check_shape, check_true
from seqcourse.grading import guard
from seqcourse_hidden._isolate import Exercises, judge_experiment

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("06-attention")

KINDS = ("dot", "general", "additive", "cosine")
TOL = dict(atol=1e-10, rtol=1e-8)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _params(Q: int, K: int, A: int, g: torch.Generator) -> dict:
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return {"W": r(Q, K), "W_q": r(Q, A), "W_k": r(K, A), "v": r(A), "beta": torch.tensor(3.0, dtype=torch.float64)}


def _reference_scores(q, k, kind, p):
    if kind == "dot":
        return torch.einsum("bd,bsd->bs", q, k)
    if kind == "general":
        return torch.einsum("bq,qk,bsk->bs", q, p["W"], k)
    if kind == "additive":
        return torch.einsum("bsa,a->bs", torch.tanh((q @ p["W_q"])[:, None] + k @ p["W_k"]), p["v"])
    qn = q / q.norm(dim=-1, keepdim=True)
    kn = k / k.norm(dim=-1, keepdim=True)
    return p["beta"] * torch.einsum("bd,bsd->bs", qn, kn)


# ---------------------------------------------------------------- exercise 1: four scores
def test_attention_scores(attention_scores) -> None:
    for k, (B, S, Q, K, A) in enumerate([(3, 5, 4, 6, 7), (1, 1, 2, 3, 2), (4, 7, 5, 5, 3)]):
        g = _gen(6000 + k)
        q = torch.randn(B, Q, generator=g, dtype=torch.float64)
        keys = torch.randn(B, S, K, generator=g, dtype=torch.float64)
        same = torch.randn(B, S, Q, generator=g, dtype=torch.float64)
        p = _params(Q, K, A, g)
        for kind in KINDS:
            kk = same if kind in ("dot", "cosine") else keys
            scores = attention_scores(q, kk, kind, p)
            check_shape(scores, (B, S), f"{kind} scores for B={B}, S={S}", hint="one score per source position")
            check_close(scores, _reference_scores(q, kk, kind, p), f"{kind} scores (case {k})", **TOL,
                        hint={"dot": "q . k_j for every source position j",
                              "general": "q W k_j, with W of shape (query size, key size)",
                              "additive": "v . tanh(q W_q + k_j W_k)",
                              "cosine": "beta * cos(q, k_j): divide both by their norms"}[kind])
        cos = attention_scores(q, same, "cosine", dict(p, beta=torch.tensor(1.0, dtype=torch.float64)))
        check_true(bool(cos.abs().max() <= 1 + 1e-9), "cosine scores with beta = 1 lie in [-1, 1]")
        scaled = attention_scores(q * 7.0, same, "cosine", p)
        check_close(scaled, attention_scores(q, same, "cosine", p), "cosine scores of a scaled query", **TOL,
                    hint="cosine similarity ignores the vectors' lengths")
    try:
        attention_scores(torch.zeros(1, 2), torch.zeros(1, 3, 2), "scaled-banana", {})
    except ValueError:
        pass
    else:
        check_true(False, "an unknown score kind should raise ValueError")
    # gradients reach the parameters of the additive score
    g = _gen(6050)
    p = {n: t.requires_grad_() for n, t in _params(3, 4, 5, g).items()}
    attention_scores(torch.randn(2, 3, generator=g, dtype=torch.float64), torch.randn(2, 4, 4, generator=g,
                     dtype=torch.float64), "additive", p).sum().backward()
    check_true(all(p[n].grad is not None for n in ("W_q", "W_k", "v")), "no gradient reached W_q, W_k or v")


# ---------------------------------------------------------------- exercise 2: masked softmax, context
def test_attend(attend) -> None:
    for k, (B, S, D) in enumerate([(4, 6, 3), (1, 1, 2), (3, 5, 7)]):
        g = _gen(6100 + k)
        scores = torch.randn(B, S, generator=g, dtype=torch.float64) * 3
        values = torch.randn(B, S, D, generator=g, dtype=torch.float64, requires_grad=True)
        lengths = torch.randint(1, S + 1, (B,), generator=g)
        lengths[0] = S
        mask = torch.arange(S)[None] < lengths[:, None]
        context, weights = attend(scores, mask, values)
        check_shape(weights, (B, S), "weights")
        check_shape(context, (B, D), "context")
        check_true(bool((weights[~mask] == 0).all()), "weights at padded positions must be exactly 0")
        check_close(weights.sum(-1), torch.ones(B, dtype=torch.float64), "each row of weights sums to", atol=1e-12,
                    hint="softmax over the source positions (the last axis), after masking")
        expected = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        check_close(weights, expected, f"weights (case {k})", **TOL)
        check_close(context, torch.einsum("bs,bsd->bd", expected, values), f"context (case {k})", **TOL,
                    hint="the context is the weighted sum of the values")
        context.sum().backward()
        check_true(bool((values.grad[~mask] == 0).all()), "padded values must get no gradient")
        big = scores.clone()
        big[~mask] = 1e6
        check_close(attend(big, mask, values)[1], expected, "weights with huge scores at padding", **TOL)


# ---------------------------------------------------------------- exercise 3: the attention decoder
def _reference(model, src, src_len, dec_in):
    packed = pack_padded_sequence(model.src_embedding(src), src_len, batch_first=True, enforce_sorted=False)
    states, h_n = model.encoder(packed)
    states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
    mask = torch.arange(src.shape[1])[None] < src_len[:, None]
    d = torch.tanh(model.bridge(torch.cat([h_n[0], h_n[1]], -1)))[None]
    keys = model.score.keys(states)
    logits, all_weights = [], []
    for t in range(dec_in.shape[1]):
        scores = _reference_scores(d[0], keys, model.score.kind, model.score.params())
        w = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
        c = torch.einsum("bs,bsd->bd", w, states)
        out, d = model.decoder(torch.cat([model.tgt_embedding(dec_in[:, t]), c], -1)[:, None], d)
        logits.append(model.out(torch.cat([out[:, 0], c], -1)))
        all_weights.append(w)
    return torch.stack(logits, 1), torch.stack(all_weights, 1)


def test_attn_seq2seq(AttnSeq2Seq) -> None:
    for k, kind in enumerate(KINDS):
        g = _gen(6200 + k)
        torch.manual_seed(6200 + k)
        B, S, T = 3, 6, 4
        model = AttnSeq2Seq(14, 11, 5, 4, kind=kind).double().eval()
        src = torch.randint(4, 14, (B, S), generator=g)
        src_len = torch.tensor([6, 2, 4])
        src[torch.arange(S)[None] >= src_len[:, None]] = 0
        dec_in = torch.randint(4, 11, (B, T), generator=g)
        with torch.no_grad():
            expected, weights = _reference(model, src, src_len, dec_in)
            logits = model(src, src_len, dec_in)
            check_shape(logits, (B, T, 11), f"{kind}: logits")
            check_close(logits, expected, f"{kind}: teacher-forced logits", **TOL,
                        hint="score with the previous decoder state d_{i-1} as the query, mask padding, feed "
                             "[embedding(y_{i-1}); c_i] to the GRU, and out([output; c_i])")
            memory, state = model.encode(src, src_len)
            _, _, w = model.step(dec_in[:, 0], state, memory, return_weights=True)
            check_close(w, weights[:, 0], f"{kind}: attention weights of the first step", **TOL)
            check_true(bool((w[1, 2:] == 0).all()), f"{kind}: a 2-character source gets weight 0 beyond position 2")
            wider = torch.cat([src, torch.zeros(B, 3, dtype=torch.long)], 1)
            check_close(model(wider, src_len, dec_in), expected, f"{kind}: logits with extra source padding", **TOL)


# ---------------------------------------------------------------- the trained model (exercise 3)
def test_trained_dates(namespace: dict) -> None:
    """The notebook's trained ``date_model`` reaches the bar; a shortfall caused by a wrong
    ``attention_scores`` or ``attend`` is charged there (see ``judge_experiment``)."""
    from seqcourse.env import get_profile
    from seqcourse_hidden.lesson05 import held_out_exact_match

    guard.verify()
    budget = get_profile().budget("06-attention")
    model, shortfall = namespace.get("date_model"), None
    if model is None:
        shortfall = "there is no trained date_model: the training cell stopped before it finished"
    else:
        acc = held_out_exact_match(model, budget, namespace["source_vocab"], namespace["target_vocab"])
        if acc < budget.min_exact_match:
            shortfall = (f"exact match on held-out dates is {acc:.4f}, below this profile's bar of "
                         f"{budget.min_exact_match}")
    own = EXERCISES.learners(namespace, "attention_scores").get("attention_scores")
    weights = EXERCISES.learners(namespace, "attend").get("attend")
    judge_experiment(
        shortfall, "AttnSeq2Seq", lambda: test_attn_seq2seq(namespace["AttnSeq2Seq"]),
        {"attention_scores": lambda: test_attention_scores(own),
         "attend": lambda: test_attend(weights)})
