import pytest
import torch
from torch import nn

from seqcourse.text import CharVocab, LabelledTexts, pad_sequences
from seqcourse.train import History, confusion_matrix, evaluate, fit


def test_vocab_round_trip_and_unknowns():
    vocab = CharVocab.from_texts(["abc", "abd"])
    assert vocab.pad_id == 0 and vocab.unk_id == 1 and len(vocab) == 6
    assert vocab.decode(vocab.encode("abd")) == "abd"
    assert vocab.encode("z") == [vocab.unk_id]
    assert vocab.decode(vocab.encode("az")) == "a?"
    with pytest.raises(TypeError):
        vocab.encode(["a"])


def test_vocab_bos_eos():
    vocab = CharVocab.from_texts(["abc"], with_bos_eos=True)
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3) and len(vocab) == 7
    ids = vocab.encode("cab", add_bos=True, add_eos=True)
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id and len(ids) == 5
    assert vocab.decode(ids) == "cab"
    assert vocab.decode(ids + vocab.encode("a")) == "cab"                     # stops at <eos>
    assert vocab.decode(ids + vocab.encode("a"), stop_at_eos=False) == "caba"
    assert vocab.decode([99]) == "?"
    with pytest.raises(AttributeError, match="with_bos_eos"):
        _ = CharVocab("ab").bos_id
    assert "'abc'" in repr(vocab)


def test_pad_sequences():
    tokens, lengths = pad_sequences([[3, 4, 5], [6]])
    assert tokens.tolist() == [[3, 4, 5], [6, 0, 0]] and lengths.tolist() == [3, 1]
    with pytest.raises(ValueError, match="empty"):
        pad_sequences([[1], []])
    with pytest.raises(ValueError):
        pad_sequences([])


def test_loader_batches_are_padded_and_deterministic():
    vocab = CharVocab.from_texts(["ab", "abc", "b"])
    data = LabelledTexts(["ab", "abc", "b", "ca"], [0, 1, 0, 1], vocab)
    first = [b[0].tolist() for b in data.loader(2, shuffle=True, seed=3)]
    again = [b[0].tolist() for b in data.loader(2, shuffle=True, seed=3)]
    assert first == again
    tokens, lengths, labels = next(iter(data.loader(4, shuffle=False)))
    assert tokens.shape == (4, 3) and lengths.tolist() == [2, 3, 1, 2] and labels.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError):
        LabelledTexts(["a"], [0, 1], vocab)


class _FirstToken(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(6, 2)

    def forward(self, tokens, lengths):
        return self.emb(tokens[:, 0])


def _step(model, batch, optimizer, loss_fn):
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(tokens, lengths), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_fit_learns_and_records_history(capsys):
    torch.manual_seed(0)
    vocab = CharVocab("abcd")
    texts = ["ab", "ba", "ca", "da"] * 8
    data = LabelledTexts(texts, [0, 1, 0, 1] * 8, vocab)
    model = _FirstToken()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    hist = fit(model, data.loader(8, True), data.loader(32, False), opt, nn.CrossEntropyLoss(), _step,
               epochs=15, log_every=5)
    assert isinstance(hist, History) and len(hist) == 15
    assert hist.last("val_acc") == 1.0 and hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist.best("val_loss", "min") <= hist.last("val_loss")
    assert capsys.readouterr().out.count("epoch") == 3
    loss, acc, preds, golds = evaluate(model, data.loader(32, False), nn.CrossEntropyLoss())
    assert acc == 1.0 and preds.shape == golds.shape == (32,)


def test_fit_stops_on_nan():
    vocab = CharVocab("ab")
    data = LabelledTexts(["ab"] * 4, [0] * 4, vocab)
    model = _FirstToken()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(model, data.loader(2, False), data.loader(2, False), opt, nn.CrossEntropyLoss(),
            lambda *a: float("nan"), epochs=1, progress=False)
    with pytest.raises(ValueError):
        fit(model, data.loader(2, False), data.loader(2, False), opt, nn.CrossEntropyLoss(), _step, 0)


def test_confusion_matrix():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_plots_return_figures():
    import matplotlib

    matplotlib.use("Agg")
    from seqcourse.plots import plot_confusion, plot_history, plot_states

    hist = History(rows=[dict(epoch=1, train_loss=1.0, val_loss=1.1, val_acc=0.5),
                         dict(epoch=2, train_loss=0.8, val_loss=1.0, val_acc=0.6)])
    assert plot_history(hist).axes
    assert plot_confusion([[2, 1], [0, 3]], ["a", "b"]).axes
    assert plot_states(torch.zeros(4, 3), list("abcd")).axes


def test_time_call_median_and_errors():
    from seqcourse.timing import time_call

    calls = []
    seconds = time_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 0.1
    with pytest.raises(ValueError):
        time_call(lambda: None, repeats=0)


def test_pairs_encode_both_sides_and_pad():
    from seqcourse.text import Pairs

    src_vocab = CharVocab.from_texts(["jeudi 7 mars"])
    tgt_vocab = CharVocab("0123456789-", with_bos_eos=True)
    data = Pairs([("7 mars", "2024-03-07"), ("jeudi", "1999-01-01")], src_vocab, tgt_vocab)
    src, src_len, tgt, tgt_len = next(iter(data.loader(2, shuffle=False)))
    assert src.shape == (2, 6) and src_len.tolist() == [6, 5] and tgt.shape == (2, 10)
    assert tgt_vocab.decode(tgt[0]) == "2024-03-07" and src_vocab.decode(src[1]) == "jeudi"
    assert src[1, 5] == 0                                       # padding
    words = Pairs([("je suis", "i am")], CharVocab("x"), CharVocab("x"), tokenize=str.split)
    assert len(words[0][0]) == 2
    with pytest.raises(ValueError, match="empty"):
        Pairs([("", "x")], src_vocab, tgt_vocab)


def test_word_vocab():
    from seqcourse.text import Pairs, WordVocab

    vocab = WordVocab.from_texts(["je suis la", "je suis ici", "rare"], min_count=2)
    assert vocab.itos[4:] == ["je", "suis"] and vocab.bos_id == 2
    ids = vocab.encode("je suis perdu", add_eos=True)
    assert ids == [4, 5, vocab.unk_id, vocab.eos_id] and vocab.decode(ids) == "je suis <unk>"
    data = Pairs([("je suis", "je")], vocab, vocab, tokenize=str.split)
    assert data[0] == ([4, 5], [4])
    with pytest.raises(ValueError):
        WordVocab(["two words"])
