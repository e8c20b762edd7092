"""Dates to ISO with a plain encoder-decoder and with additive attention: accuracy, time, and
accuracy against input length (the measurements lessons 05 and 06 are built on).

    python bench/dates_seq2seq.py [--days 4000] [--per-day 3] [--epochs 8] [--hidden 128]
    # writes bench/results/dates_seq2seq.md

The models are written here (the lessons' answers never live in the library): a bidirectional GRU
encoder; a GRU decoder fed [y_{i-1}; c] at every step, where c is either the encoder's final state
(fixed-size context, lesson 05) or an additive-attention context over all encoder states (lesson
06). Teacher forcing, a loss that ignores padding, greedy decoding to <eos>, exact match on test
days that never occur in training.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tqdm import tqdm

from seqcourse.data.dates import make_dates
from seqcourse.env import seed_everything
from seqcourse.text import CharVocab, Pairs

OUT = Path(__file__).resolve().parent / "results" / "dates_seq2seq.md"


class Seq2Seq(nn.Module):
    def __init__(self, src_vocab: int, tgt_vocab: int, emb: int, hidden: int, attention: bool):
        super().__init__()
        self.attention = attention
        self.src_emb = nn.Embedding(src_vocab, emb, padding_idx=0)
        self.encoder = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, hidden)
        self.tgt_emb = nn.Embedding(tgt_vocab, emb, padding_idx=0)
        self.decoder = nn.GRU(emb + 2 * hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden + 2 * hidden, tgt_vocab)
        if attention:  # additive (Bahdanau): v^T tanh(W_h h_j + W_d d_{i-1})
            self.w_enc = nn.Linear(2 * hidden, hidden, bias=False)
            self.w_dec = nn.Linear(hidden, hidden)
            self.v = nn.Linear(hidden, 1, bias=False)

    def encode(self, src, src_len):
        packed = pack_padded_sequence(self.src_emb(src), src_len.cpu(), batch_first=True, enforce_sorted=False)
        states, h = self.encoder(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
        summary = torch.cat([h[0], h[1]], dim=-1)                       # (B, 2H)
        mask = torch.arange(src.shape[1], device=src.device)[None] < src_len.to(src.device)[:, None]
        return states, summary, mask, torch.tanh(self.bridge(summary))[None]

    def context(self, states, summary, mask, d):
        if not self.attention:
            return summary
        scores = self.v(torch.tanh(self.w_enc(states) + self.w_dec(d[0])[:, None])).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return (weights[..., None] * states).sum(1)

    def step(self, prev, d, memory):
        c = self.context(*memory, d)
        out, d = self.decoder(torch.cat([self.tgt_emb(prev), c], -1)[:, None], d)
        return self.out(torch.cat([out[:, 0], c], -1)), d

    def forward(self, src, src_len, dec_in):
        states, summary, mask, d = self.encode(src, src_len)
        logits = []
        for t in range(dec_in.shape[1]):
            step_logits, d = self.step(dec_in[:, t], d, (states, summary, mask))
            logits.append(step_logits)
        return torch.stack(logits, 1)

    @torch.no_grad()
    def greedy(self, src, src_len, bos, eos, max_len):
        states, summary, mask, d = self.encode(src, src_len)
        prev = torch.full((src.shape[0],), bos, dtype=torch.long)
        out = []
        for _ in range(max_len):
            logits, d = self.step(prev, d, (states, summary, mask))
            prev = logits.argmax(-1)
            out.append(prev)
        rows = torch.stack(out, 1).tolist()
        return [r[:r.index(eos)] if eos in r else r for r in rows]


def run(attention: bool, data, src_vocab, tgt_vocab, args) -> dict:
    seed_everything(0)
    model = Seq2Seq(len(src_vocab), len(tgt_vocab), 32, args.hidden, attention)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    bos, eos = tgt_vocab.bos_id, tgt_vocab.eos_id
    start = time.perf_counter()
    for _ in tqdm(range(args.epochs), desc="attention" if attention else "plain", leave=False):
        model.train()
        for src, src_len, tgt, tgt_len in data["train"].loader(64, shuffle=True):
            B = tgt.shape[0]
            dec_in = torch.cat([torch.full((B, 1), bos), tgt], 1)
            dec_out = torch.cat([tgt, torch.zeros(B, 1, dtype=torch.long)], 1)
            dec_out[torch.arange(B), tgt_len] = eos
            logits = model(src, src_len, dec_in)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), dec_out.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    hits, by_len = 0, {}
    test = data["test"]
    for i in range(0, len(test), 512):
        src, src_len, tgt, tgt_len = Pairs.collate([test[j] for j in range(i, min(i + 512, len(test)))])
        preds = model.greedy(src, src_len, bos, eos, 12)
        for k, p in enumerate(preds):
            ok = p == tgt[k, :tgt_len[k]].tolist()
            hits += ok
            bucket = min(int(src_len[k]) // 5 * 5, 35)
            by_len.setdefault(bucket, []).append(ok)
    return dict(seconds=seconds, accuracy=hits / len(test),
                by_len={b: (sum(v) / len(v), len(v)) for b, v in sorted(by_len.items())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=4000)
    parser.add_argument("--per-day", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    splits = make_dates(args.days, args.per_day, seed=0)
    src_vocab = CharVocab.from_texts(e.source for e in splits["train"])
    tgt_vocab = CharVocab("0123456789-", with_bos_eos=True)
    data = {k: Pairs([(e.source, e.target) for e in v], src_vocab, tgt_vocab) for k, v in splits.items()}
    results = {name: run(att, data, src_vocab, tgt_vocab, args) for name, att in
               (("fixed context (lesson 05)", False), ("additive attention (lesson 06)", True))}
    buckets = sorted({b for r in results.values() for b in r["by_len"]})
    head = "| model | train s | test exact match | " + " | ".join(
        f"len {b}-{b + 4 if b < 35 else '..'}" for b in buckets) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        cells = " | ".join(f"{r['by_len'][b][0]:.3f} ({r['by_len'][b][1]})" if b in r["by_len"] else "-" for b in buckets)
        lines.append(f"| {name} | {r['seconds']:.0f} | {r['accuracy']:.4f} | {cells} |")
    text = f"""# Dates to ISO: fixed context against attention

Command: `python bench/dates_seq2seq.py --days {args.days} --per-day {args.per_day} --epochs {args.epochs} --hidden {args.hidden}`.
Machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, CPU.
Data: {len(data['train'])} training pairs ({args.days * 8 // 10} days), {len(data['test'])} test pairs on days never seen in
training; 14 locales, 4 formats. Exact match of greedy decoding; by source length in characters (count in brackets).

{chr(10).join(lines)}
"""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
