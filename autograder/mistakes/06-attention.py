"""Plausible wrong answers for lesson 06. Each must lose points (tests/test_mistakes.py)."""

from seqcourse.grading.mistakes import Mistake


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
            _scores(dot="(keys @ query.unsqueeze(-1)).squeeze(-1) / query.shape[-1] ** 0.5")),
    Mistake("attention_scores", "additive-without-tanh", "leaves out the tanh of the additive score",
            _scores(additive="((query @ params['W_q']).unsqueeze(1) + keys @ params['W_k']) @ params['v']")),
    Mistake("attention_scores", "cosine-without-beta", "forgets the sharpness beta of the cosine score",
            _scores(cosine="(k @ q.unsqueeze(-1)).squeeze(-1)")),
    Mistake("attention_scores", "cosine-unnormalised-keys", "normalises the query but not the keys",
            _scores(cosine="params['beta'] * (keys @ q.unsqueeze(-1)).squeeze(-1)")),
    Mistake("attention_scores", "general-is-dot", "ignores W in the general score (uses q . k)",
            _scores(general="(keys[..., :query.shape[-1]] @ query.unsqueeze(-1)).squeeze(-1)")),
    # ---------------------------------------------------------------- attend
    Mistake("attend", "softmax-over-batch", "takes the softmax over the batch axis",
            _attend(weights="torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=0)")),
    Mistake("attend", "padding-not-masked", "forgets the mask: padded positions get weight",
            _attend(weights="torch.softmax(scores, dim=-1)")),
    Mistake("attend", "mask-after-softmax", "zeroes padded weights after the softmax, so rows no longer sum to 1",
            _attend(weights="torch.softmax(scores, dim=-1) * mask")),
    Mistake("attend", "context-from-scores", "weights the values by the raw scores",
            _attend(context="(scores.masked_fill(~mask, 0).unsqueeze(-1) * values).sum(dim=1)")),
    # ---------------------------------------------------------------- AttnSeq2Seq
    Mistake("AttnSeq2Seq", "query-is-new-state", "scores with the decoder state after the step, not d_{i-1}",
            _model(query_after=True)),
    Mistake("AttnSeq2Seq", "no-mask", "lets attention look at padded source positions",
            _model(mask="torch.ones_like(mask)")),
    Mistake("AttnSeq2Seq", "padded-encoder", "runs the encoder on the padded batch", _model().replace(
        """        packed = pack_padded_sequence(self.src_embedding(src), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, h_n = self.encoder(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])""",
        """        states, h_n = self.encoder(self.src_embedding(src))""")),
]
