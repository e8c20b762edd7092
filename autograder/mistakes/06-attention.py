"""Plausible wrong answers for lesson 06. Each must lose points in its own exercise and in no other
(tests/test_mistakes.py); ``kind`` is its class (seqcourse_grader.catalogue.CLASSES)."""

from seqcourse_grader.catalogue import Mistake


def _scores(dot="(keys @ query.unsqueeze(-1)).squeeze(-1)",
            general="(keys @ (query @ params['W']).unsqueeze(-1)).squeeze(-1)",
            additive="torch.tanh((query @ params['W_q']).unsqueeze(1) + keys @ params['W_k']) @ params['v']",
            cosine="params['beta'] * (k @ q.unsqueeze(-1)).squeeze(-1)"):
    return f"""
def attention_scores(query, keys, kind, params):
    if kind == "dot":
        return {dot}
    if kind == "general":
        return {general}
    if kind == "additive":
        return {additive}
    if kind == "cosine":
        q = query / query.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        k = keys / keys.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return {cosine}
    raise ValueError(f"unknown score kind {{kind!r}}")
"""


def _patched(source: str, old: str, new: str) -> str:
    """``source`` with ``old`` (which must occur) replaced by ``new``."""
    assert old in source, old
    return source.replace(old, new)


_ADDITIVE = "        return torch.tanh((query @ params['W_q']).unsqueeze(1) + keys @ params['W_k']) @ params['v']\n"
_COSINE = """        q = query / query.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        k = keys / keys.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return params['beta'] * (k @ q.unsqueeze(-1)).squeeze(-1)
"""


def _attend(weights="torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=-1)",
            context="(weights.unsqueeze(-1) * values).sum(dim=1)"):
    return f"""
def attend(scores, mask, values):
    weights = {weights}
    context = {context}
    return context, weights
"""


_MODEL_INIT = """
class AttnSeq2Seq(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, emb_size, hidden_size, kind="additive"):
        super().__init__()
        H = self.hidden_size = hidden_size
        self.src_embedding = nn.Embedding(src_vocab_size, emb_size, padding_idx=0)
        self.encoder = nn.GRU(emb_size, H, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * H, H)
        self.score = AttentionScore(kind, H, 2 * H, H)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, emb_size, padding_idx=0)
        self.decoder = nn.GRU(emb_size + 2 * H, H, batch_first=True)
        self.out = nn.Linear(H + 2 * H, tgt_vocab_size)

    def forward(self, src, src_len, dec_in):
        memory, state = self.encode(src, src_len)
        logits = []
        for t in range(dec_in.shape[1]):
            step_logits, state = self.step(dec_in[:, t], state, memory)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)
"""

_ENCODE = """
    def encode(self, src, src_len):
        packed = pack_padded_sequence(self.src_embedding(src), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, h_n = self.encoder(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_len.to(src.device)[:, None]
        state = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1))).unsqueeze(0)
        return (states, self.score.keys(states), {mask}), state
"""


def _model(mask="mask", query_after=False):
    step = """
    def step(self, prev, state, memory, return_weights=False):
        states, keys, mask = memory
""" + ("""        output, new_state = self.decoder(
            torch.cat([self.tgt_embedding(prev), states.mean(1)], dim=-1).unsqueeze(1), state)
        scores = attention_scores(new_state[0], keys, self.score.kind, self.score.params())
        context, weights = attend(scores, mask, states)
        output, state = self.decoder(torch.cat([self.tgt_embedding(prev), context], dim=-1).unsqueeze(1), state)
""" if query_after else """        scores = attention_scores(state[0], keys, self.score.kind, self.score.params())
        context, weights = attend(scores, mask, states)
        output, state = self.decoder(torch.cat([self.tgt_embedding(prev), context], dim=-1).unsqueeze(1), state)
""") + """        logits = self.out(torch.cat([output[:, 0], context], dim=-1))
        return (logits, state, weights) if return_weights else (logits, state)
"""
    return _MODEL_INIT + _ENCODE.format(mask=mask) + step


MISTAKES = [
    # ---------------------------------------------------------------- attention_scores
    Mistake("attention_scores", "scaled-dot", "divides the dot product by sqrt(d), as Transformers do, "
            "where the lesson asks for the plain dot product",
            _scores(dot="(keys @ query.unsqueeze(-1)).squeeze(-1) / query.shape[-1] ** 0.5"), kind="maths"),
    Mistake("attention_scores", "additive-without-tanh", "leaves out the tanh of the additive score",
            _scores(additive="((query @ params['W_q']).unsqueeze(1) + keys @ params['W_k']) @ params['v']"),
            kind="maths"),
    Mistake("attention_scores", "cosine-without-beta", "forgets the sharpness beta of the cosine score",
            _scores(cosine="(k @ q.unsqueeze(-1)).squeeze(-1)"), kind="maths"),
    Mistake("attention_scores", "cosine-unnormalised-keys", "normalises the query but not the keys",
            _scores(cosine="params['beta'] * (keys @ q.unsqueeze(-1)).squeeze(-1)"), kind="maths"),
    Mistake("attention_scores", "general-is-dot", "ignores W in the general score (uses q . k)",
            _scores(general="(keys[..., :query.shape[-1]] @ query.unsqueeze(-1)).squeeze(-1)"), kind="maths"),
    Mistake("attention_scores", "zeros-then-loop", "fills a torch.zeros(B, S) buffer one source position at a "
            "time: the buffer is float32 whatever the inputs are",
            _patched(_scores(), _ADDITIVE, """        scores = torch.zeros(keys.shape[0], keys.shape[1])
        for j in range(keys.shape[1]):
            scores[:, j] = torch.tanh(query @ params['W_q'] + keys[:, j] @ params['W_k']) @ params['v']
        return scores
"""), kind="dtype"),
    Mistake("attention_scores", "view-keys", "flattens the keys with view for a 2-D matmul; the model's keys come "
            "from pad_packed_sequence and are not contiguous",
            _patched(_scores(), _ADDITIVE, """        B, S, K = keys.shape
        projected = (keys.view(B * S, K) @ params['W_k']).view(B, S, -1)
        return torch.tanh((query @ params['W_q']).unsqueeze(1) + projected) @ params['v']
"""), kind="input"),
    Mistake("attention_scores", "squeeze-everything", "squeezes every axis of size 1, so a batch or a source of "
            "one loses its axis",
            _scores(dot="(keys @ query.unsqueeze(-1)).squeeze()",
                    general="(keys @ (query @ params['W']).unsqueeze(-1)).squeeze()"), kind="edge"),
    Mistake("attention_scores", "cosine-no-clamp", "divides by the norms without clamping them: a zero vector "
            "gives 0/0 = NaN",
            _patched(_scores(), _COSINE, """        q = query / query.norm(dim=-1, keepdim=True)
        k = keys / keys.norm(dim=-1, keepdim=True)
        return params['beta'] * (k @ q.unsqueeze(-1)).squeeze(-1)
"""), kind="extreme"),
    Mistake("attention_scores", "normalise-in-place", "normalises the query in place (/=), which changes the "
            "caller's tensor",
            _patched(_scores(), _COSINE, """        query /= query.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        keys = keys / keys.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return params['beta'] * (keys @ query.unsqueeze(-1)).squeeze(-1)
"""), kind="side-effect"),
    # ---------------------------------------------------------------- attend
    Mistake("attend", "softmax-over-batch", "takes the softmax over the batch axis",
            _attend(weights="torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=0)"), kind="maths"),
    Mistake("attend", "padding-not-masked", "forgets the mask: padded positions get weight",
            _attend(weights="torch.softmax(scores, dim=-1)"), kind="maths"),
    Mistake("attend", "mask-after-softmax", "zeroes padded weights after the softmax, so rows no longer sum to 1",
            _attend(weights="torch.softmax(scores, dim=-1) * mask"), kind="maths"),
    Mistake("attend", "context-from-scores", "weights the values by the raw scores",
            _attend(context="(scores.masked_fill(~mask, 0).unsqueeze(-1) * values).sum(dim=1)"), kind="maths"),
    Mistake("attend", "softmax-in-float32", "computes the softmax in float32 for stability, as mixed-precision "
            "code does: float64 scores come back float32",
            _attend(weights="torch.softmax(scores.float().masked_fill(~mask, float('-inf')), dim=-1)"), kind="dtype"),
    Mistake("attend", "mask-from-lengths", "rebuilds the mask from its row sums, as if padding were always at the "
            "end", """
def attend(scores, mask, values):
    lengths = mask.sum(dim=-1)
    real = torch.arange(scores.shape[1], device=scores.device)[None, :] < lengths[:, None]
    weights = torch.softmax(scores.masked_fill(~real, float('-inf')), dim=-1)
    context = (weights.unsqueeze(-1) * values).sum(dim=1)
    return context, weights
""", kind="input"),
    Mistake("attend", "squeeze-context", "forms the context with bmm and squeezes every axis of size 1",
            _attend(context="torch.bmm(weights.unsqueeze(1), values).squeeze()"), kind="edge"),
    Mistake("attend", "exp-then-mask", "writes the softmax by hand, exp of the scores times the mask, "
            "normalised: exp(1e4) overflows", """
def attend(scores, mask, values):
    e = torch.exp(scores) * mask
    weights = e / e.sum(dim=-1, keepdim=True)
    context = (weights.unsqueeze(-1) * values).sum(dim=1)
    return context, weights
""", kind="extreme"),
    Mistake("attend", "finite-mask-constant", "masks with -1e4, a 'large enough' constant, instead of -inf",
            _attend(weights="torch.softmax(scores.masked_fill(~mask, -1e4), dim=-1)"), kind="extreme"),
    Mistake("attend", "masked-fill-in-place", "masks the scores with masked_fill_, changing the caller's scores",
            _attend(weights="torch.softmax(scores.masked_fill_(~mask, float('-inf')), dim=-1)"), kind="side-effect"),
    # ---------------------------------------------------------------- AttnSeq2Seq
    Mistake("AttnSeq2Seq", "query-is-new-state", "scores with the decoder state after the step, not d_{i-1}",
            _model(query_after=True), kind="maths"),
    Mistake("AttnSeq2Seq", "no-mask", "lets attention look at padded source positions",
            _model(mask="torch.ones_like(mask)"), kind="maths"),
    Mistake("AttnSeq2Seq", "padded-encoder", "runs the encoder on the padded batch", _model().replace(
        """        packed = pack_padded_sequence(self.src_embedding(src), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, h_n = self.encoder(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])""",
        """        states, h_n = self.encoder(self.src_embedding(src))"""), kind="maths"),
    Mistake("AttnSeq2Seq", "logits-buffer", "collects the logits in a torch.zeros(B, T, V) buffer, float32 "
            "whatever the model's dtype", _patched(_model(), """        logits = []
        for t in range(dec_in.shape[1]):
            step_logits, state = self.step(dec_in[:, t], state, memory)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)
""", """        logits = torch.zeros(dec_in.shape[0], dec_in.shape[1], self.out.out_features)
        for t in range(dec_in.shape[1]):
            logits[:, t], state = self.step(dec_in[:, t], state, memory)
        return logits
"""), kind="dtype"),
    Mistake("AttnSeq2Seq", "sorted-lengths-only", "packs with the default enforce_sorted=True, which needs the "
            "batch sorted by decreasing length",
            _patched(_model(), "batch_first=True,\n                                      enforce_sorted=False)",
                     "batch_first=True)"), kind="input"),
    Mistake("AttnSeq2Seq", "squeeze-output", "squeezes the GRU's output to drop the time axis, which also drops "
            "a batch of one", _patched(_model(), "self.out(torch.cat([output[:, 0], context], dim=-1))",
                                       "self.out(torch.cat([output.squeeze(), context], dim=-1))"), kind="edge"),
    Mistake("AttnSeq2Seq", "last-position-summary", "summarises the source by the unpacked states at the last "
            "position: padding for short sources, and the backward direction's start, not its end",
            _patched(_model(), "torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1))).unsqueeze(0)",
                     "torch.tanh(self.bridge(states[:, -1])).unsqueeze(0)"), kind="edge"),
    Mistake("AttnSeq2Seq", "no-grad-step", "decorates step with @torch.no_grad(), as greedy decoding is, so "
            "training gets no gradient",
            _patched(_model(), "    def step(self,", "    @torch.no_grad()\n    def step(self,"), kind="side-effect"),
]
