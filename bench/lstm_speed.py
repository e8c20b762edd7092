"""One LSTM layer four ways, timed side by side (lesson 04, section 6).

    python bench/lstm_speed.py [--repeats 5] [--quick]   # writes bench/results/lstm_speed.md

The contenders are the code of lesson 04's solution notebook itself (the given cell, the
per-gate loop and the reference fused loop, run from the notebook's cells, so the bench measures
what learners run), plus the same fused loop written with ``x_gates[:, t]`` indexing, the
slow-backward pitfall the lesson warns about, and ``nn.LSTM`` (cuDNN on a GPU). Every size is
timed forward only (``no_grad``) and forward + backward, on the CPU and on CUDA when present.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from seqcourse.timing import time_call
from seqcourse_grader.nbg import run_lesson_cells

OUT = Path(__file__).resolve().parent / "results" / "lstm_speed.md"
SIZES = [(32, 20, 64), (64, 30, 128), (64, 50, 256), (128, 50, 512)]  # (B, T, H = E)
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def lesson_functions() -> dict:
    """Run the cells of lesson 04's solution that define the contenders; return their namespace."""
    return run_lesson_cells("04-deep-rnn", ["given", "per_gate", "fused_lstm_forward"], {"torch": torch, "nn": nn})


def fused_with_indexing(x, weight_ih, weight_hh, bias_ih, bias_hh):
    """The fused loop reading step t as x_gates[:, t]: same values, a T-times-larger backward."""
    B, T, _ = x.shape
    H = weight_hh.shape[1]
    h, c = x.new_zeros(B, H), x.new_zeros(B, H)
    x_gates = x @ weight_ih.T + (bias_ih + bias_hh)
    outputs = []
    for t in range(T):
        i, f, g, o = (x_gates[:, t] + h @ weight_hh.T).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), (h, c)


def contenders(ns: dict, lstm: nn.LSTM, x: torch.Tensor) -> dict:
    weights = [getattr(lstm, f"{n}_l0") for n in WEIGHTS]
    cell = ns["LSTMCellScratch"](lstm.input_size, lstm.hidden_size).to(x.device)
    cell.load_state_dict(dict(zip(WEIGHTS, weights, strict=True)))

    def cell_loop():
        state, outputs = None, []
        for t in range(x.shape[1]):
            state = cell(x[:, t], state)
            outputs.append(state[0])
        return torch.stack(outputs, dim=1), state

    return {
        "per-gate loop": lambda: ns["per_gate_lstm_forward"](x, *weights),
        "lesson 03 cell loop": cell_loop,
        "fused loop": lambda: ns["fused_lstm_forward"](x, *weights),
        "fused, x_gates[:, t]": lambda: fused_with_indexing(x, *weights),
        "nn.LSTM": lambda: lstm(x),
    }


def measure(device: torch.device, repeats: int, sizes) -> list[dict]:
    ns = lesson_functions()
    rows = []
    for B, T, H in tqdm(sizes, desc=f"sizes on {device.type}"):
        torch.manual_seed(0)
        lstm = nn.LSTM(H, H, batch_first=True).to(device)
        x = torch.randn(B, T, H, device=device)
        for mode in ("forward", "forward + backward"):
            row = dict(device=device.type, B=B, T=T, H=H, mode=mode)
            for name, run in contenders(ns, lstm, x).items():
                if mode == "forward":
                    def call(run=run):
                        with torch.no_grad():
                            run()
                else:
                    def call(run=run):
                        run()[0].sum().backward()
                row[name] = time_call(call, repeats=repeats, warmup=2, device=device)
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    names = [k for k in rows[0] if k not in ("device", "B", "T", "H", "mode")]
    head = "| device | B, T, H | pass | " + " | ".join(f"{n} (ms)" for n in names) + \
           " | cell loop / fused | cell loop / nn.LSTM | per-gate / nn.LSTM |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ms = " | ".join(f"{r[n] * 1e3:.2f}" for n in names)
        lines.append(f"| {r['device']} | {r['B']}, {r['T']}, {r['H']} | {r['mode']} | {ms} | "
                     f"{r['lesson 03 cell loop'] / r['fused loop']:.2f} | "
                     f"{r['lesson 03 cell loop'] / r['nn.LSTM']:.1f} | {r['per-gate loop'] / r['nn.LSTM']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="the two smallest sizes only, not written")
    args = parser.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = [r for d in devices for r in measure(d, args.repeats, sizes)]
    gpu = f", GPU {torch.cuda.get_device_name(0)} (cuDNN {torch.backends.cudnn.version()})" \
        if torch.cuda.is_available() else ", no GPU"
    text = f"""# One LSTM layer four ways (lesson 04)

Command: `python bench/lstm_speed.py --repeats {args.repeats}`. Machine: {platform.processor() or platform.machine()},
{torch.get_num_threads()} torch threads{gpu}; torch {torch.__version__}. Median of {args.repeats} runs after 2 warm-up
runs; E = H; one layer, batch first, float32. Ratios above 1 mean the second named is faster.

{table(rows)}
"""
    print(text)
    if not args.quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
        print(f"written to {OUT}")


if __name__ == "__main__":
    main()
