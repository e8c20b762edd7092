"""The README's recipe for grading on machines of one's own: a Dask scheduler and a worker started by
hand with TLS certificates, and ``course autograde --scheduler tls://...`` with the client's.

Everything runs on 127.0.0.1 with certificates made here for the test (one CA, a key and a
certificate for each of the scheduler, the worker and the instructor). The class is graded as on
the pool; a client without a certificate is refused by the scheduler.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from seqcourse.paths import REPO_ROOT
from seqcourse_grader.catalogue import load_catalogue, student_submission

pytestmark = pytest.mark.pipeline
AID = "01-rnn-cell"
BIN = Path(sys.executable).parent


def _certificates(folder: Path) -> dict[str, tuple[Path, Path]]:
    """A CA and, signed by it, a key and certificate each for the scheduler, the worker and the
    instructor's client: name -> (certificate, key); "ca" -> (certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def write(name, cert, key):
        c, k = folder / f"{name}.pem", folder / f"{name}-key.pem"
        c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        k.chmod(0o600)
        return c, k

    def build(subject, issuer, public_key, signing_key, ca: bool):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return b.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seqcourse test CA")])
    out = {"ca": write("ca", build(ca_name, ca_name, ca_key.public_key(), ca_key, True), ca_key)}
    for name in ("scheduler", "worker", "instructor"):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        out[name] = write(name, build(subject, ca_name, key.public_key(), ca_key, False), key)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _started_under(pid: int) -> list[str]:
    """Grading processes (helpers, zygotes, kernels) below the hand-started worker."""
    import psutil

    return [" ".join(p.cmdline())[:200] for p in psutil.Process(pid).children(recursive=True)
            if "seqcourse" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE]


def _tls(certs, who) -> list[str]:
    cert, key = certs[who]
    return ["--tls-ca-file", str(certs["ca"][0]), "--tls-cert", str(cert), "--tls-key", str(key)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A TLS scheduler and one single-threaded worker, started by hand as the README says."""
    folder = tmp_path_factory.mktemp("tls")
    certs = _certificates(folder)
    port = _free_port()
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED="False",
               DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")
    log = open(folder / "cluster.log", "ab")   # noqa: SIM115 (closed below)
    scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--protocol", "tls", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard", *_tls(certs, "scheduler")],
                                 stdout=log, stderr=log, env=env)
    address = f"tls://127.0.0.1:{port}"
    worker = subprocess.Popen([str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                               "--no-dashboard", *_tls(certs, "worker")], stdout=log, stderr=log, env=env)
    try:
        yield address, certs, worker.pid
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
        for proc in (worker, scheduler):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def _course(root: Path) -> dict[str, float]:
    """Lesson 01 with a correct notebook, the untouched stubs and one catalogued mistake: their
    expected scores."""
    for edition in ("solutions", "lessons"):
        shutil.copytree(REPO_ROOT / edition / AID, root / edition / AID)
    mistake = load_catalogue(AID)[0]
    kinds = {"correct": (student_submission(AID), 18.0),
             "stub": (nbformat.read(REPO_ROOT / "lessons" / AID / f"{AID}.ipynb", as_version=4), 0.0),
             "mistake": (student_submission(AID, {mistake.cell: mistake.source}), None)}
    for student, (nb, _) in kinds.items():
        (root / "autograder" / "submitted" / student / AID).mkdir(parents=True)
        nbformat.write(nb, root / "autograder" / "submitted" / student / AID / f"{AID}.ipynb")
    return {student: score for student, (_, score) in kinds.items()}


def test_a_class_is_graded_through_tls_and_a_client_without_a_certificate_is_refused(cluster, tmp_path):
    address, certs, worker_pid = cluster
    expected = _course(tmp_path)
    cert, key = certs["instructor"]
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION="True",
               DASK_DISTRIBUTED__COMM__TLS__CA_FILE=str(certs["ca"][0]),
               DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=str(cert), DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=str(key))
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "course"), "autograde", AID, "--course", str(tmp_path), "--scheduler", address,
                           "--cell-timeout", "60"], env=env, capture_output=True, text=True,
                          timeout=400)
    # the worker's helpers and their zygotes were started for this command: they have ended with it
    left = _started_under(worker_pid)
    print(f"\n{done.stdout}\n(graded through {address} in {time.perf_counter() - started:.1f} s)")
    assert "3 submissions recorded" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert left == [], f"processes the command started are still running: {left}"
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()
            if line.split() and line.split()[0] in expected}
    assert rows["correct"][1:3] == ["18", "graded"], rows
    assert rows["stub"][1:3] == ["0", "graded"], rows
    assert float(rows["mistake"][1]) < 18 and rows["mistake"][2] == "graded", rows

    # the CA but no certificate of its own: the scheduler refuses the connection
    bare = {k: v for k, v in env.items() if not k.startswith("DASK_DISTRIBUTED__COMM__TLS__CLIENT")}
    refused = subprocess.run([sys.executable, "-c", "import json, sys\nfrom dask.distributed import Client\n"
                              "try:\n    Client(sys.argv[1], timeout='8s')\nexcept Exception as e:\n"
                              "    print(json.dumps(type(e).__name__))\nelse:\n    print(json.dumps('connected'))",
                              address], env=bare, capture_output=True, text=True, timeout=120)
    assert json.loads(refused.stdout.strip().splitlines()[-1]) != "connected", refused.stdout + refused.stderr
