"""A JupyterHub for a seqcourse class: ``jupyterhub -f hub/jupyterhub_config.py``, run as root
from a folder that keeps the hub's state (its database, cookie secret, proxy token).

Every user gets a JupyterLab server with nbgrader's Assignments tab, set up for the course's
exchange; the instructors grade from a terminal with ``nbgrader collect``, ``course autograde``
(into the shared PostgreSQL gradebook given by ``--db-url``), ``course feedback`` and ``nbgrader
release_feedback``. The README's "Running a class on a hub" walks through it; tests/test_hub.py runs
it on 127.0.0.1.

Settings, from the environment:
  SEQCOURSE_HUB_IP, SEQCOURSE_HUB_PORT       where users connect (default 127.0.0.1:8000)
  SEQCOURSE_HUB_API_PORT, SEQCOURSE_PROXY_API_PORT   the hub's and the proxy's own ports (8081, 8001)
  SEQCOURSE_HUB_USERS, SEQCOURSE_HUB_INSTRUCTORS     comma-separated user names (instructors are admins)
  SEQCOURSE_HUB_SPAWNER   "local" (default): each server runs as the Unix user of the same name
                          (safe: nbgrader's exchange keeps students apart by Unix permissions; the
                          course's Python must be executable by every user, e.g. a venv in /opt);
                          "shared": every server runs as the hub's account with its own home
                          folder under SEQCOURSE_HUB_HOMES (for a container per class or a test:
                          students are not kept apart, see the README's warning on the exchange)
  SEQCOURSE_HUB_PYTHON    the Python that runs users' servers (default: the hub's own); it must have
                          the course installed and be executable by every user
  SEQCOURSE_HUB_DB        the hub's own database (default: sqlite in the state folder)
  SEQCOURSE_HUB_API_TOKEN a token for the course's scripts (a service with the rights to start
                          servers and issue tokens); unset: no such service
  SEQCOURSE_EXCHANGE, SEQCOURSE_COURSE_ID   as in autograder/nbgrader_config.py
  SEQCOURSE_PROXY         configurable-http-proxy (default: the one .ci/install puts in .venv/proxy)
"""

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821  (provided by traitlets when it runs this file)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
env = os.environ.get

c.JupyterHub.ip = env("SEQCOURSE_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env("SEQCOURSE_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env("SEQCOURSE_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(env('SEQCOURSE_PROXY_API_PORT', '8001'))}"
proxy = REPO / ".venv" / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [env("SEQCOURSE_PROXY") or (str(proxy) if proxy.exists() else "configurable-http-proxy")]
c.JupyterHub.db_url = env("SEQCOURSE_HUB_DB", "sqlite:///jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = "jupyterhub_cookie_secret"

users = {u.strip() for u in env("SEQCOURSE_HUB_USERS", "").split(",") if u.strip()}
instructors = {u.strip() for u in env("SEQCOURSE_HUB_INSTRUCTORS", "").split(",") if u.strip()}
c.Authenticator.allowed_users = users | instructors
c.Authenticator.admin_users = instructors

# Each server: JupyterLab from the course's environment, nbgrader's extensions (installed with it),
# the course's exchange and course id.
python = env("SEQCOURSE_HUB_PYTHON")
c.Spawner.cmd = [python, "-m", "jupyterhub.singleuser"] if python else [str(BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {
    "SEQCOURSE_EXCHANGE": env("SEQCOURSE_EXCHANGE", "/srv/nbgrader/exchange"),
    "SEQCOURSE_COURSE_ID": env("SEQCOURSE_COURSE_ID", "seqcourse"),
    "PATH": f"{Path(python).parent if python else BIN}:/usr/local/bin:/usr/bin:/bin",
}
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 120
shared = env("SEQCOURSE_HUB_SPAWNER", "local") == "shared"
if shared:
    c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
    c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(env("SEQCOURSE_HUB_HOMES", "/tmp/seqcourse-homes"), "{username}")
    # One account for all: nbgrader would name every submission after it, so name the student.
    c.Spawner.environment["SEQCOURSE_STUDENT_ID"] = lambda spawner: spawner.user.name
    if os.geteuid() == 0:
        c.Spawner.args = ["--allow-root"]   # the hub's account is root: a container or a test


def give_student_config(spawner):
    """Before a server starts: the student's nbgrader settings in the folder JupyterLab opens."""
    home = Path(spawner.home_dir) if shared else Path(os.path.expanduser(f"~{spawner.user.name}"))
    home.mkdir(parents=True, exist_ok=True)
    target = home / "nbgrader_config.py"
    if not target.exists():
        shutil.copy(REPO / "autograder" / "student_nbgrader_config.py", target)
        if not shared:
            shutil.chown(target, spawner.user.name)


c.Spawner.pre_spawn_hook = give_student_config

token = env("SEQCOURSE_HUB_API_TOKEN")
if token:
    c.JupyterHub.services = [{"name": "seqcourse", "api_token": token}]
    c.JupyterHub.load_roles = [{
        "name": "seqcourse-service", "services": ["seqcourse"],
        "scopes": ["admin:users", "admin:servers", "tokens", "access:servers", "read:users"],
    }]
