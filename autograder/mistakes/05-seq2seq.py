"""Plausible wrong answers for lesson 05. Each must lose points in its own exercise only
(tests/test_mistakes.py); ``kind`` is its class (seqcourse_grader.catalogue.CLASSES)."""

from seqcourse_grader.catalogue import Mistake


def _forcing(dec_in="torch.cat([torch.full((B, 1), bos_id, dtype=tgt.dtype, device=tgt.device), tgt], dim=1)",
             eos="dec_out[torch.arange(B, device=tgt.device), tgt_len.to(tgt.device)] = eos_id",
             zeros="torch.zeros(B, 1, dtype=tgt.dtype, device=tgt.device)", head="B = tgt.shape[0]"):
    return f"""
def teacher_forcing(tgt, tgt_len, bos_id, eos_id):
    {head}
    dec_in = {dec_in}
    dec_out = torch.cat([tgt, {zeros}], dim=1)
    {eos}
    return dec_in, dec_out
"""


_MODEL_INIT = """
class Seq2Seq(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, emb_size, hidden_size):
        super().__init__()
        H = self.hidden_size = hidden_size
        self.src_embedding = nn.Embedding(src_vocab_size, emb_size, padding_idx=0)
        self.encoder = nn.GRU(emb_size, H, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * H, H)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, emb_size, padding_idx=0)
        self.decoder = nn.GRU(emb_size + 2 * H, H, batch_first=True)
        self.out = nn.Linear(H + 2 * H, tgt_vocab_size)
"""

_ENCODE = """        packed = pack_padded_sequence(self.src_embedding(src), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, h_n = self.encoder(packed)
        context = torch.cat([h_n[0], h_n[1]], dim=-1)
        return context, torch.tanh(self.bridge(context)).unsqueeze(0)
"""

_FORWARD = """        context, state = self.encode(src, src_len)
        first = state
        logits = []
        for t in range(dec_in.shape[1]):
            {carry}
            logits.append(step_logits)
        return torch.stack(logits, dim=1)
"""


def _model(encode=_ENCODE, carry="step_logits, state = self.step(dec_in[:, t], state, context)",
           step_output="output[:, 0]", forward=None):
    return _MODEL_INIT + f"""
    def encode(self, src, src_len):
{encode}
    def step(self, prev, state, context):
        inputs = torch.cat([self.tgt_embedding(prev), context], dim=-1).unsqueeze(1)
        output, state = self.decoder(inputs, state)
        return self.out(torch.cat([{step_output}, context], dim=-1)), state

    def forward(self, src, src_len, dec_in):
{forward or _FORWARD.format(carry=carry)}"""


def _greedy(start="bos_id", keep="not done[b] and prev[b] != eos_id", stop="done.all()", steps="range(max_len)",
            batch="src.shape[0]", token="int(prev[b])", argmax="logits.argmax(dim=-1)", head=""):
    return f"""
@torch.no_grad()
def greedy_decode(model, src, src_len, bos_id, eos_id, max_len):
    {head}
    context, state = model.encode(src, src_len)
    B = {batch}
    prev = torch.full((B,), {start}, dtype=torch.long, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    out = [[] for _ in range(B)]
    for _ in {steps}:
        logits, state = model.step(prev, state, context)
        prev = {argmax}
        for b in range(B):
            if {keep}:
                out[b].append({token})
        done |= prev == eos_id
        if {stop}:
            break
    return out
"""


def _beam(fallback=True, norm="best[1] / best[2] ** alpha", key="f[1] / f[2] ** alpha", score_eos=True,
          width="min(beam_size, logits.shape[-1])", pairs="top.values.tolist(), top.indices.tolist()",
          extend=None, stop="not beams"):
    extend = extend or ("candidates.append((tokens + [idx], logp + lp, new_state))" if score_eos else
                        "candidates.append((tokens + [idx], logp + (0.0 if idx == eos_id else lp), new_state))")
    greedy = """
    greedy = greedy_decode(model, src, src_len, bos_id, eos_id, max_len)[0]
    finished.append((greedy, *sequence_log_prob(model, src, src_len, greedy, bos_id, eos_id, max_len)))""" \
        if fallback else ""
    return f"""
@torch.no_grad()
def beam_search(model, src, src_len, bos_id, eos_id, beam_size, max_len, alpha=0.0):
    context, state = model.encode(src, src_len)
    beams = [([], 0.0, state)]
    finished = []
    for _ in range(max_len):
        candidates = []
        for tokens, logp, state in beams:
            prev = torch.tensor([tokens[-1] if tokens else bos_id], device=src.device)
            logits, new_state = model.step(prev, state, context)
            top = torch.log_softmax(logits[0], dim=-1).topk({width})
            for lp, idx in zip({pairs}):
                {extend}
        candidates.sort(key=lambda cand: cand[1], reverse=True)
        beams = []
        for tokens, logp, new_state in candidates[:beam_size]:
            if tokens[-1] == eos_id:
                finished.append((tokens[:-1], logp, len(tokens)))
            else:
                beams.append((tokens, logp, new_state))
        if {stop}:
            break
    finished += [(tokens, logp, len(tokens)) for tokens, logp, _ in beams]{greedy}
    best = max(finished, key=lambda f: {key})
    return best[0], {norm}
"""


MISTAKES = [
    # ---------------------------------------------------------------- teacher_forcing
    Mistake("teacher_forcing", "no-eos", "forgets to append <eos> to the targets", _forcing(eos="pass"),
            kind="maths"),
    Mistake("teacher_forcing", "eos-after-padding", "puts <eos> at the end of the padded row, not after "
            "the last real token", _forcing(eos="dec_out[:, -1] = eos_id"), kind="maths"),
    Mistake("teacher_forcing", "not-shifted", "feeds the decoder the token it must predict (shifted by one)",
            _forcing() + "\n_right = teacher_forcing\n\ndef teacher_forcing(tgt, tgt_len, bos_id, eos_id):\n"
                         "    dec_in, dec_out = _right(tgt, tgt_len, bos_id, eos_id)\n    return dec_out, dec_out\n",
            kind="maths"),
    Mistake("teacher_forcing", "no-bos", "starts the decoder inputs with padding instead of <bos>",
            _forcing(dec_in="torch.cat([torch.zeros(B, 1, dtype=tgt.dtype, device=tgt.device), tgt], dim=1)"),
            kind="maths"),
    Mistake("teacher_forcing", "float-padding-column", "appends torch.zeros(B, 1), a float column: the "
            "targets become floats", _forcing(zeros="torch.zeros(B, 1)"), kind="dtype"),
    Mistake("teacher_forcing", "long-columns", "makes the new columns int64 whatever tgt is (and on the CPU)",
            _forcing(dec_in="torch.cat([torch.full((B, 1), bos_id), tgt], dim=1)",
                     zeros="torch.zeros(B, 1, dtype=torch.long)"), kind="dtype"),
    Mistake("teacher_forcing", "trimmed-to-longest-row", "trims the padding to the longest row first, so a "
            "target wider than its rows comes back narrower",
            _forcing(head="B = tgt.shape[0]\n    tgt = tgt[:, :int(tgt_len.max())]"), kind="input"),
    # ---------------------------------------------------------------- Seq2Seq
    Mistake("Seq2Seq", "padded-encoder", "runs the encoder on the padded batch: the backward state reads padding",
            _model(encode="""        _, h_n = self.encoder(self.src_embedding(src))
        context = torch.cat([h_n[0], h_n[1]], dim=-1)
        return context, torch.tanh(self.bridge(context)).unsqueeze(0)
"""), kind="maths"),
    Mistake("Seq2Seq", "forward-state-twice", "builds the context from the forward direction only",
            _model(encode=_ENCODE.replace("h_n[1]", "h_n[0]")), kind="maths"),
    Mistake("Seq2Seq", "state-not-carried", "restarts the decoder from its first state at every step",
            _model(carry="step_logits, _ = self.step(dec_in[:, t], first, context)"), kind="maths"),
    Mistake("Seq2Seq", "no-bridge-tanh", "skips the tanh on the bridge",
            _model(encode=_ENCODE.replace("torch.tanh(self.bridge(context))", "self.bridge(context)")),
            kind="maths"),
    Mistake("Seq2Seq", "float32-logits-buffer", "fills a preallocated torch.zeros(B, T, V): float32 on the "
            "CPU whatever the model is", _model(forward="""        context, state = self.encode(src, src_len)
        B, T = dec_in.shape
        logits = torch.zeros(B, T, self.out.out_features)
        for t in range(T):
            logits[:, t], state = self.step(dec_in[:, t], state, context)
        return logits
"""), kind="dtype"),
    Mistake("Seq2Seq", "sorted-packing", "packs with the default enforce_sorted=True, which needs lengths in "
            "decreasing order", _model(encode=_ENCODE.replace(",\n                                      "
                                                              "enforce_sorted=False", "")), kind="input"),
    Mistake("Seq2Seq", "squeezed-step", "takes the GRU's one step out with .squeeze(), which also drops the "
            "batch axis when B = 1", _model(step_output="output.squeeze()"), kind="edge"),
    # ---------------------------------------------------------------- masked_cross_entropy
    Mistake("masked_cross_entropy", "padding-counted", "averages over every position, padding included", """
def masked_cross_entropy(logits, targets, pad_id=0):
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
""", kind="maths"),
    Mistake("masked_cross_entropy", "mean-of-sequence-means", "averages each sequence, then the batch "
            "(short sequences weigh more)", """
def masked_cross_entropy(logits, targets, pad_id=0):
    losses = nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = (targets != pad_id).to(losses.dtype)
    return ((losses * mask).sum(1) / mask.sum(1)).mean()
""", kind="maths"),
    Mistake("masked_cross_entropy", "summed", "sums instead of averaging", """
def masked_cross_entropy(logits, targets, pad_id=0):
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                       ignore_index=pad_id, reduction="sum")
""", kind="maths"),
    Mistake("masked_cross_entropy", "pad-id-ignored", "always masks id 0, whatever pad_id says", """
def masked_cross_entropy(logits, targets, pad_id=0):
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                       ignore_index=0)
""", kind="maths"),
    Mistake("masked_cross_entropy", "float32-loss", "casts the logits to float32 'for a stable loss', as "
            "under mixed precision", """
def masked_cross_entropy(logits, targets, pad_id=0):
    V = logits.shape[-1]
    losses = nn.functional.cross_entropy(logits.float().reshape(-1, V), targets.reshape(-1), reduction="none")
    mask = (targets.reshape(-1) != pad_id).float()
    return (losses * mask).sum() / mask.sum()
""", kind="dtype"),
    Mistake("masked_cross_entropy", "view-not-reshape", "flattens with .view, which fails on a slice "
            "(a non-contiguous tensor)", """
def masked_cross_entropy(logits, targets, pad_id=0):
    V = logits.shape[-1]
    losses = nn.functional.cross_entropy(logits.view(-1, V), targets.view(-1), reduction="none")
    mask = (targets.view(-1) != pad_id).to(losses.dtype)
    return (losses * mask).sum() / mask.sum()
""", kind="input"),
    Mistake("masked_cross_entropy", "log-of-softmax", "writes the cross-entropy as -log(softmax(logits)[target]), "
            "which underflows to log(0) for large logits", """
def masked_cross_entropy(logits, targets, pad_id=0):
    probs = torch.softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = (targets != pad_id).to(probs.dtype)
    return (-torch.log(probs) * mask).sum() / mask.sum()
""", kind="extreme"),
    Mistake("masked_cross_entropy", "targets-overwritten", "marks padding with -100 in the targets themselves, "
            "for cross_entropy's default ignore_index", """
def masked_cross_entropy(logits, targets, pad_id=0):
    targets[targets == pad_id] = -100
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
""", kind="side-effect"),
    # ---------------------------------------------------------------- greedy_decode
    Mistake("greedy_decode", "keeps-eos", "keeps the <eos> in the output", _greedy(keep="not done[b]"),
            kind="maths"),
    Mistake("greedy_decode", "stops-at-first-eos", "stops the whole batch when one row ends",
            _greedy(stop="done.any()"), kind="maths"),
    Mistake("greedy_decode", "starts-with-eos", "feeds <eos> as the first input", _greedy(start="eos_id"),
            kind="maths"),
    Mistake("greedy_decode", "one-step-too-many", "allows max_len + 1 tokens", _greedy(steps="range(max_len + 1)"),
            kind="maths"),
    Mistake("greedy_decode", "tensor-tokens", "appends prev[b], a 0-dimensional tensor, not an int",
            _greedy(token="prev[b]"), kind="dtype"),
    Mistake("greedy_decode", "batch-from-context", "reads B from the context, which need not be a tensor "
            "(lesson 06's is a tuple)", _greedy(batch="context.shape[0]"), kind="input"),
    Mistake("greedy_decode", "squeezed-argmax", "squeezes the argmax, which leaves no batch axis when B = 1",
            _greedy(argmax="logits.argmax(dim=-1, keepdim=True).squeeze()"), kind="edge"),
    Mistake("greedy_decode", "switches-to-eval", "calls model.eval() and leaves the caller's model in eval mode",
            _greedy(head="model.eval()"), kind="side-effect"),
    # ---------------------------------------------------------------- beam_search
    Mistake("beam_search", "no-greedy-candidate", "trusts the beam alone, which can prune the greedy path",
            _beam(fallback=False), kind="maths"),
    Mistake("beam_search", "not-length-normalised", "ignores alpha: ranks and scores by raw log-probability",
            _beam(norm="best[1]", key="f[1]"), kind="maths"),
    Mistake("beam_search", "eos-not-scored", "does not count the log-probability of <eos>",
            _beam(score_eos=False), kind="maths"),
    Mistake("beam_search", "topk-beam-size", "asks topk for beam_size tokens, more than a small vocabulary has",
            _beam(width="beam_size"), kind="edge"),
    Mistake("beam_search", "shared-token-list", "extends a hypothesis with tokens.append, so its candidates "
            "share (and all grow) one list", _beam(extend="tokens.append(idx)\n"
                                                          "                candidates.append((tokens, logp + lp, new_state))"),
            kind="side-effect"),
    Mistake("beam_search", "stops-at-beam-size-finished", "stops once beam_size hypotheses have finished, as "
            "some libraries do, not when the beam is empty", _beam(stop="not beams or len(finished) >= beam_size"),
            kind="maths"),
    Mistake("beam_search", "tensor-scores", "iterates over the topk tensors: the tokens are 0-dimensional "
            "tensors and the score a tensor", _beam(pairs="top.values, top.indices"), kind="dtype"),
]
