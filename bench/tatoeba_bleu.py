"""French to English on Tatoeba: lesson 06's attention model against a baseline that follows the
PyTorch tutorial's design, same data, same budget; BLEU (sacrebleu) and training time.

    SEQCOURSE_TATOEBA=/path/to/eng-fra.txt python bench/tatoeba_bleu.py [--epochs 6] [--keep-period]
    # writes bench/results/tatoeba_bleu.md

The tutorial's design (pytorch.org, "NLP From Scratch: Translation with a Sequence to Sequence
Network and Attention"): its normaliser and filter (11,445 pairs; 10,599 with the older
normaliser that keeps the period, `--keep-period`), a one-directional GRU encoder with hidden size
128, and a GRU decoder with additive (Bahdanau) attention whose query is the decoder state and whose
input is [embedding; context]. It is written here (the lessons' answers never live in the library).
Lesson 06's model is run from the solution notebook's own cells. Both use the same split (no French
sentence in two splits), batches of 128, Adam, teacher forcing and the same number of epochs.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import sacrebleu
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqcourse.data import tatoeba
from seqcourse.env import seed_everything
from seqcourse.text import Pairs, WordVocab
from seqcourse.train import exact_match_and_outputs, fit_seq2seq
from seqcourse_grader.nbg import run_lesson_cells

OUT = Path(__file__).resolve().parent / "results" / "tatoeba_bleu.md"


class TutorialAttnSeq2Seq(nn.Module):
    """The tutorial's EncoderRNN + AttnDecoderRNN, with hidden size 128 and dropout 0.1."""

    def __init__(self, src_vocab: int, tgt_vocab: int, hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.src_emb = nn.Embedding(src_vocab, hidden, padding_idx=0)
        self.encoder = nn.GRU(hidden, hidden, batch_first=True)
        self.tgt_emb = nn.Embedding(tgt_vocab, hidden, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.Wa, self.Ua, self.Va = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 1)
        self.decoder = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, tgt_vocab)

    def encode(self, src, src_len):
        packed = pack_padded_sequence(self.dropout(self.src_emb(src)), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, h = self.encoder(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
        mask = torch.arange(src.shape[1], device=src.device)[None] < src_len.to(src.device)[:, None]
        return (states, self.Ua(states), mask), h

    def step(self, prev, state, memory):
        states, keys, mask = memory
        scores = self.Va(torch.tanh(self.Wa(state[0])[:, None] + keys)).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        context = (weights[..., None] * states).sum(1)
        out, state = self.decoder(torch.cat([self.dropout(self.tgt_emb(prev)), context], -1)[:, None], state)
        return self.out(out[:, 0]), state

    def forward(self, src, src_len, dec_in):
        memory, state = self.encode(src, src_len)
        logits = []
        for t in range(dec_in.shape[1]):
            step_logits, state = self.step(dec_in[:, t], state, memory)
            logits.append(step_logits)
        return torch.stack(logits, 1)


def lesson_namespace() -> dict:
    """Lesson 06's given and reference cells, run from its solution notebook."""
    return run_lesson_cells("06-attention", ["given", "attention_scores", "attend", "AttnSeq2Seq"],
                            {"torch": torch, "nn": nn, "pack_padded_sequence": pack_padded_sequence,
                             "pad_packed_sequence": pad_packed_sequence})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--keep-period", action="store_true", help="the older normaliser (10,599 pairs)")
    args = parser.parse_args()
    pairs = tatoeba.tutorial_pairs(tatoeba.tatoeba_file(), keep_period=args.keep_period)
    split = tatoeba.split_pairs(pairs, seed=0)
    fr, en = WordVocab.from_texts(f for f, _ in split["train"]), WordVocab.from_texts(e for _, e in split["train"])
    train = Pairs(split["train"], fr, en, tokenize=str.split)
    test = Pairs(split["test"], fr, en, tokenize=str.split)
    refs = [[e for _, e in split["test"]]]
    ns = lesson_namespace()
    contenders = {
        "PyTorch tutorial design (GRU 128, additive attention)": lambda: TutorialAttnSeq2Seq(len(fr), len(en)),
        "lesson 05, fixed context (emb 64, H 128)": lambda: ns["Seq2Seq"](len(fr), len(en), 64, 128),
        "lesson 06, additive attention (emb 64, H 128)": lambda: ns["AttnSeq2Seq"](len(fr), len(en), 64, 128),
    }
    rows = []
    for name, make in contenders.items():
        seed_everything(0)
        model = make()
        _, seconds = fit_seq2seq(model, train.loader(args.batch, shuffle=True), args.epochs, args.lr,
                                 ns["teacher_forcing"], ns["masked_cross_entropy"], en.bos_id, en.eos_id, desc=name)
        _, preds, _ = exact_match_and_outputs(model, test, ns["greedy_decode"], en.bos_id, en.eos_id, 12)
        bleu = sacrebleu.corpus_bleu([en.decode(p) for p in preds], refs)
        params = sum(p.numel() for p in model.parameters())
        rows.append(f"| {name} | {params:,} | {seconds:.0f} | {bleu.score:.1f} |")
        print(rows[-1], flush=True)
    text = f"""# Tatoeba French to English: BLEU at the same budget

Command: `python bench/tatoeba_bleu.py --epochs {args.epochs} --batch {args.batch} --lr {args.lr}{' --keep-period' if args.keep_period else ''}`.
Machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, CPU.
Data: the tutorial's filter, {len(pairs):,} pairs; {len(split['train']):,} train, {len(split['test']):,} test
(split by French sentence). Greedy decoding; sacrebleu {sacrebleu.__version__} corpus BLEU.

| model | parameters | train s | test BLEU |
|---|---|---|---|
""" + "\n".join(rows) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
