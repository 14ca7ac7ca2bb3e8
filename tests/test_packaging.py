"""The package as it is shipped and deployed: license, version, sdist rules, deploy files.

The deploy image (examples/Dockerfile) is built from the repository's root and installs
pipecat-bey from it, through examples/requirements.txt, never from the package index, where
the name is not ours yet. The fast tests read the files; the slow one runs the image's pip
steps, as a dry run, in a fresh environment against a copy of what the image would hold.
"""

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml takes Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NAME = canonicalize_name(PYPROJECT["project"]["name"])


# --- The license -------------------------------------------------------------------------


def test_the_license_is_bsd_2_clause():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 2-Clause License")
    assert "Copyright (c) 2026, pipecat-bey contributors" in text
    assert "1. Redistributions of source code must retain" in text
    assert "2. Redistributions in binary form must reproduce" in text
    assert "3." not in text and "Neither the name" not in text  # not BSD-3-Clause
    assert 'PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"' in text


def test_pyproject_declares_the_license_as_an_spdx_expression():
    project = PYPROJECT["project"]
    assert project["license"] == "BSD-2-Clause"  # a string: the table form is deprecated
    assert project["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))
    setuptools = next(
        Requirement(r)
        for r in PYPROJECT["build-system"]["requires"]
        if canonicalize_name(Requirement(r).name) == "setuptools"
    )
    # License expressions and license-files are setuptools 77's.
    assert "77.0" in setuptools.specifier and "76.9" not in setuptools.specifier


# --- The version and the changelog -------------------------------------------------------


def package_version() -> str:
    tree = ast.parse((ROOT / "pipecat_bey" / "__init__.py").read_text())
    versions = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    assert len(versions) == 1, "pipecat_bey/__init__.py sets __version__ once, to a literal"
    return versions[0]


def test_the_version_is_written_in_one_place():
    project = PYPROJECT["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "pipecat_bey.__version__"
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+", package_version())


def test_the_changelog_has_unreleased_changes_and_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert package_version() in headings


def test_the_sdist_leaves_the_tests_benchmarks_and_ci_out():
    manifest = (ROOT / "MANIFEST.in").read_text().split()
    for directory in ("tests", "benchmarks", ".ci", ".github"):
        assert f"prune {directory}" in " ".join(manifest), directory
    for kept in ("README.md", "LICENSE", "CHANGELOG.md"):
        assert kept in manifest


# --- examples/requirements.txt -----------------------------------------------------------


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split(" #")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def local_requirements(path: Path) -> list[str]:
    """The lines of a requirements file that are paths (what pip resolves from the cwd)."""
    return [line for line in requirement_lines(path) if line.startswith((".", "/"))]


def split_extras(line: str) -> tuple[str, set[str]]:
    path, _, extras = line.partition("[")
    return path, {e.strip() for e in extras.rstrip("]").split(",") if e.strip()}


def test_requirements_name_no_pipecat_bey_from_the_index():
    for line in requirement_lines(EXAMPLES / "requirements.txt"):
        if line.startswith((".", "/", "-")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        # A bare name would install whatever holds it on the index; a URL must point here.
        assert canonicalize_name(requirement.name) != NAME or requirement.url, line


def test_requirements_install_pipecat_bey_from_the_repository_root():
    (line,) = local_requirements(EXAMPLES / "requirements.txt")
    path, extras = split_extras(line)
    # pip resolves it from the directory it runs in: the root, as the file says.
    assert (ROOT / path).resolve() == ROOT
    assert "examples" in extras
    assert "examples" in PYPROJECT["project"]["optional-dependencies"]
    assert "repository's root" in (EXAMPLES / "requirements.txt").read_text()


# --- examples/Dockerfile -----------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), comments dropped and continued lines joined."""
    instructions, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


@dataclass
class Image:
    """What a Dockerfile puts in its image, in terms of its build context."""

    base: str = ""
    copies: dict[PurePosixPath, str] = field(default_factory=dict)  # image path -> context
    pip_installs: list[tuple[PurePosixPath, list[str]]] = field(default_factory=list)

    def source_of(self, path: PurePosixPath) -> str | None:
        """The context path an image path was copied from (if it, or a parent, was)."""
        longest_first = sorted(self.copies.items(), key=lambda c: -len(c[0].parts))
        for image_path, source in longest_first:
            if path == image_path or image_path in path.parents:
                rest = path.relative_to(image_path).as_posix()
                return source if rest == "." else f"{source}/{rest}"
        return None


def read_image(path: Path) -> Image:
    image, workdir = Image(), PurePosixPath("/")
    for keyword, args in dockerfile_instructions(path):
        if keyword == "FROM":
            image.base = args.split()[0]
        elif keyword == "WORKDIR":
            workdir = workdir / args
        elif keyword in ("COPY", "ADD"):
            words = shlex.split(args)
            assert not any(w.startswith("--from") for w in words), "copies from the context"
            *sources, dest = [w for w in words if not w.startswith("--")]
            target = workdir / dest
            for source in sources:
                into_dir = dest.endswith("/") or len(sources) > 1
                name = PurePosixPath(source.rstrip("/")).name
                is_dir = (ROOT / source).is_dir()
                into = target / name if into_dir and not is_dir else target
                image.copies[into] = PurePosixPath(source).as_posix()
        elif keyword == "RUN":
            for command in re.split(r"&&|;", args):
                words = shlex.split(command)
                for at in range(len(words) - 1):
                    if words[at].endswith("pip") and words[at + 1] == "install":
                        image.pip_installs.append((workdir, words[at + 2 :]))
    return image


IMAGE = read_image(EXAMPLES / "Dockerfile")


def requirement_files(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-r", "--requirement")]


def test_the_image_is_built_from_the_repository_root():
    assert IMAGE.base.startswith("dailyco/pipecat-base")
    for source in IMAGE.copies.values():
        # Each source is a path in the repository's root, the build context; never the
        # whole of it (a local .venv or .env would go into the image).
        assert (ROOT / source).exists(), f"{source} is not in the repository's root"
        assert source not in (".", ".env", ".venv"), f"COPY {source}: name what the image needs"
    # The base image runs /app/bot.py.
    assert IMAGE.source_of(PurePosixPath("/app/bot.py")) == "examples/bot.py"
    assert "docker build" in (EXAMPLES / "Dockerfile").read_text()
    assert "-f examples/Dockerfile" in (EXAMPLES / "Dockerfile").read_text()


def test_the_image_installs_the_requirements_file_with_pipecat_bey_from_its_copy():
    (workdir, args), *others = IMAGE.pip_installs
    assert not others, "one pip install step"
    (requirements,) = requirement_files(args)
    # The file installed is examples/requirements.txt, run from a copy of the root...
    assert IMAGE.source_of(workdir / requirements) == "examples/requirements.txt"
    assert IMAGE.source_of(workdir) in (None, ".")
    # ...whose local requirement is a copy of the package with all that building it takes.
    (line,) = local_requirements(EXAMPLES / "requirements.txt")
    package_dir = workdir / split_extras(line)[0]
    project = PYPROJECT["project"]
    needed = ["pyproject.toml", project["readme"], *project["license-files"], "pipecat_bey"]
    for name in needed:
        assert IMAGE.source_of(package_dir / name) == name, f"{name} is not copied"


# --- The README's deploy commands and pcc-deploy.toml ------------------------------------


def readme_deploy_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Deploy to Pipecat Cloud\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            for command in line.split("&&"):
                words = shlex.split(command, comments=True)
                if words:
                    commands.append(words)
    return commands


def option(words: list[str], *names: str) -> str:
    return next(words[i + 1] for i, w in enumerate(words[:-1]) if w in names)


def test_pcc_deploy_points_at_the_image_the_readme_builds_and_pushes():
    config = tomllib.loads((EXAMPLES / "pcc-deploy.toml").read_text())
    commands = readme_deploy_commands()
    build = next(c for c in commands if c[:2] == ["docker", "build"])
    push = next(c for c in commands if c[:2] == ["docker", "push"])
    assert option(build, "-f", "--file") == "examples/Dockerfile"
    assert build[-1] == "."  # the context: the root, where the README's commands run
    assert option(build, "--platform") == "linux/arm64"  # what Pipecat Cloud runs
    assert option(build, "-t", "--tag") == config["image"] == push[2]
    # pcc deploy reads pcc-deploy.toml from the directory it runs in: examples/.
    at = next(i for i, c in enumerate(commands) if c[:2] == ["pcc", "deploy"])
    assert ["cd", "examples"] in commands[:at]
    secrets = next(c for c in commands if c[:3] == ["pcc", "secrets", "set"])
    assert secrets[3] == config["secret_set"]
    assert config["agent_name"] in (ROOT / "README.md").read_text()
    # The Dockerfile's own comment gives the same build command.
    assert " ".join(build) in (EXAMPLES / "Dockerfile").read_text()


# --- The image's install steps, resolved (slow: it reaches PyPI) -------------------------


def lay_out_image(root: Path) -> None:
    """Copy what the Dockerfile copies from the context to where it puts it, under root."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for image_path, source in IMAGE.copies.items():
        target = root / image_path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(ROOT / source, target)


DRY_RUN = ["--dry-run", "--ignore-installed", "--quiet", "--report", "-"]
"""pip resolves as in a fresh image, installs nothing, and prints what it would install."""


@pytest.mark.slow
def test_the_image_install_steps_resolve_pipecat_bey_from_the_repository(tmp_path):
    image_root = tmp_path / "image"
    lay_out_image(image_root)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    reports = []
    for workdir, args in IMAGE.pip_installs:
        args = [a for a in args if a not in ("--no-cache-dir", "--upgrade", "-U")]
        done = subprocess.run(
            [python, "-m", "pip", "install", *args, *DRY_RUN],
            cwd=image_root / workdir.relative_to("/"),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        reports.append(json.loads(done.stdout))
    installs = [item for report in reports for item in report["install"]]
    by_name = {canonicalize_name(i["metadata"]["name"]): i for i in installs}
    ours = by_name[NAME]
    # From the copy of the repository in the image, not from the index.
    package_dir = image_root / IMAGE.pip_installs[0][0].relative_to("/")
    assert ours["download_info"]["url"] == package_dir.as_uri()
    assert "dir_info" in ours["download_info"]
    assert ours["metadata"]["version"] == package_version()
    assert "examples" in ours.get("requested_extras", [])
    # And what bot.py imports resolves along with it.
    for name in ("pipecat-ai", "daily-python", "python-dotenv"):
        assert name in by_name, f"{name} does not resolve"
    print(f"resolved {len(installs)} distributions; {NAME} from {package_dir}", file=sys.stderr)
