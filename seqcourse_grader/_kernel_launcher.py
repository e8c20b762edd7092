"""The process jupyter_client starts as a grading kernel (run with ``python -S``: standard library
only, so it starts in milliseconds). It asks the worker's kernel zygote to fork a kernel for this
connection file, relays signals to it (an interrupt is how a cell's time limit stops it) and exits
with its status. If the zygote cannot be reached, it starts the sandboxed kernel the slow way.
"""

import json
import os
import signal
import socket
import sys
import time


def _fallback():
    os.execv(sys.executable, [sys.executable, "-m", "seqcourse_grader.sandbox", *sys.argv[1:]])


def _starting(path):
    """The zygote is alive and still importing (torch...): worth waiting for."""
    try:
        os.kill(int(open(path + ".pid").read()), 0)
    except (OSError, ValueError):
        return False
    return not os.path.exists(path + ".ready")


def main():
    path = os.environ.get("SEQCOURSE_ZYGOTE", "")
    deadline = time.monotonic() + 60
    while path and time.monotonic() < deadline and _starting(path):
        time.sleep(0.02)
    if not path or not os.path.exists(path + ".ready"):
        _fallback()
    try:
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(path)
        request = {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}
        conn.sendall((json.dumps(request) + "\n").encode())
        replies = conn.makefile("r")
        pid = int(replies.readline().split()[1])
    except (OSError, ValueError, IndexError):
        _fallback()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda number, frame: os.kill(pid, number))
    line = replies.readline()        # "exit <status>", or nothing if the zygote went away
    sys.exit(int(line.split()[1]) if line.startswith("exit ") else 1)


if __name__ == "__main__":
    main()
