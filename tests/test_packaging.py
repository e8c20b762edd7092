"""The dependency files agree, and CI runs exactly the README's test command."""

import re

import tomllib
import yaml
from packaging.requirements import Requirement

from seqcourse.paths import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _reqs(strings):
    """Name -> requirement; the project's own extras (``seqcourse[site]``) stand for their lists."""
    out = {}
    for s in strings:
        req = Requirement(s)
        if req.name == PYPROJECT["project"]["name"]:
            for extra in req.extras:
                out.update(_reqs(PYPROJECT["project"]["optional-dependencies"][extra]))
        else:
            out[req.name.lower()] = req
    return out


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    assert env["name"] == "seqcourse"
    deps = env["dependencies"]
    assert any(str(d).startswith("python=3.11") for d in deps)
    pip_part = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    options = [p for p in pip_part if p.startswith("-")]
    assert options == ["-c constraints.txt"], "the pip part must pass the torch constraint"
    env_reqs = _reqs(p for p in pip_part if not p.startswith("-"))
    project = PYPROJECT["project"]
    wanted = _reqs(project["dependencies"] + project["optional-dependencies"]["dev"])
    assert set(env_reqs) == set(wanted), f"differ: {set(env_reqs) ^ set(wanted)}"
    for name, req in wanted.items():
        if name == "torch":
            continue  # the exact pin lives in constraints.txt
        assert env_reqs[name].specifier == req.specifier, f"{name}: {env_reqs[name]} vs {req}"


def test_torch_pin_is_the_same_everywhere():
    pin = re.search(r"^torch==([\d.]+)$", (REPO_ROOT / "constraints.txt").read_text(), re.M).group(1)
    env = (REPO_ROOT / "environment.yml").read_text()
    assert f"torch=={pin}" in env
    assert Requirement(next(d for d in PYPROJECT["project"]["dependencies"]
                            if d.startswith("torch"))).specifier.contains(pin)


def test_required_packages_are_declared():
    names = set(_reqs(PYPROJECT["project"]["dependencies"]))
    assert {"jupyterlab", "torch", "nbgrader", "nbval", "matplotlib", "numpy"} <= names


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    block = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S)
    assert block, "README.md must mark its test command with <!-- test-command -->"
    command = block.group(1).strip().splitlines()[-1]
    assert command in ci.splitlines(), f"{command!r} is not a line of .ci/run"


def test_runtime_folders_are_ignored():
    ignored = (REPO_ROOT / ".gitignore").read_text()
    for folder in ("autograder/submitted/", "autograder/autograded/", "autograder/feedback/",
                   "autograder/gradebook.db"):
        assert folder in ignored
