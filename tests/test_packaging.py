"""The wheel is the product: built from the tree, installed into a fresh virtual environment
and run from a folder outside the repository, ``astro-exp`` trains, predicts and serves with
the configs it carries as package data (conf/ is ``astro_exp.conf``), and never needs tests/."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _source_copy(dest: Path) -> Path:
    """The files git would ship (tracked and new, not ignored), so the build leaves no
    build/ or egg-info in the working tree."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(src.read_bytes())
    return dest


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(bin folder of a fresh venv with the wheel installed, environment to run it in)."""
    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("needs the git checkout to list the files a wheel is built from")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp / "src")
    wheels = tmp / "wheels"
    # no build isolation: setuptools comes from this environment (no package index needed)
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
        ],
        cwd=tmp,
        env=dict(os.environ),
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = wheels.glob("astro_exp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "astro_exp/conf/train.yaml" in names and "astro_exp/conf/model/tiny.yaml" in names
    assert (
        "astro_exp/conf/hydra/launcher/parallel.yaml" in names
        and "astro_exp/web/templates/base.html" in names
    )
    assert not [n for n in names if n.startswith(("tests/", "conf/", "scripts/"))], (
        "only the package ships"
    )

    venv = tmp / "venv"
    made = _run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        cwd=tmp,
        env=dict(os.environ),
    )
    assert made.returncode == 0, made.stderr
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / ("python.exe" if os.name == "nt" else "python")
    # torch & co. from this environment: --system-site-packages reaches the base interpreter's
    # packages only, and this environment may itself be a venv
    site = Path(
        _run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=tmp,
            env=dict(os.environ),
        ).stdout.strip()
    )
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_astro_exp_test_parent_env.pth").write_text("\n".join(sorted(here)) + "\n")
    put = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=tmp,
        env=dict(os.environ),
    )
    assert put.returncode == 0, put.stdout[-3000:] + put.stderr[-3000:]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "WANDB_API_KEY")
    }
    env.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        PYTHONUNBUFFERED="1",
        ASTRO_EXP_ROOT=str(tmp / "root"),
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
    )
    return bindir, env


def _gallery_page(exe: str, cwd: Path, env: dict[str, str], ckpt: Path) -> bytes:
    """Start ``astro-exp serve`` on a free port and fetch its gallery page once."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "serve", f"port={port}", f"ckpt_path={ckpt}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    return resp.read().lstrip().lower()
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    proc.stdout.read() if proc.stdout else b""
                )
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_wheel_trains_predicts_and_serves_outside_the_repository(installed, tmp_path: Path) -> None:
    bindir, env = installed
    exe = str(bindir / "astro-exp")
    work = tmp_path / "elsewhere"
    work.mkdir()

    where = _run(
        [
            str(bindir / "python"),
            "-c",
            "import astro_exp, astro_exp.conf; print(astro_exp.__file__); "
            "print(astro_exp.conf.__file__)",
        ],
        cwd=work,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    assert all(str(ROOT) not in line for line in where.stdout.splitlines()), (
        where.stdout
    )  # the wheel, not the tree

    trained = _run(
        [exe, "train", "debug=fast", "logger=none", "anomaly.enabled=false"], cwd=work, env=env
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run,) = (Path(env["ASTRO_EXP_ROOT"]) / "outputs" / "runs").glob("*/*")
    assert (run / "metrics.json").is_file() and (run / ".hydra" / "config.yaml").is_file()
    best = run / "checkpoints" / "best.pt"
    assert best.is_file()

    Image.new("RGB", (48, 48), (200, 40, 40)).save(work / "red.png")
    predicted = _run(
        [
            exe,
            "predict",
            f"ckpt_path={best}",
            "inputs=[red.png]",
            "progress=false",
            "anomaly=false",
        ],
        cwd=work,
        env=env,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert "red.png" in predicted.stdout

    helped = _run([exe, "serve", "--help"], cwd=work, env=env)
    assert (
        helped.returncode == 0
        and "astro-exp serve" in helped.stdout
        and "port: 5000" in helped.stdout
    ), helped.stderr
    assert _gallery_page(exe, work, env, best).startswith(
        b"<!doctype html>"
    )  # templates ship as package data

    listed = _run([exe, "--help"], cwd=work, env=env)
    assert listed.returncode == 0 and all(
        c in listed.stdout for c in ("train", "predict", "serve", "dataset", "evaluate")
    )
    bad = _run([exe, "train", "model=nope"], cwd=work, env=env)
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("error: train: no option 'nope'")
        and bad.stderr.count("\n") == 1
    )
    assert not (work / "outputs").exists()  # nothing was written next to the user's files
