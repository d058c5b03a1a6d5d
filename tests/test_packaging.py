"""The wheel a user would install: built from this checkout, installed into a fresh venv with only the
core dependencies (numpy, h5py), where `gateport inspect` and `--to torch` work and torch is absent."""
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "fixtures" / "models" / "autoencoder_bilstm.h5"


def run(*argv, cwd=None):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_wheel_installs_with_core_dependencies_only_and_converts(tmp_path):
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", ROOT)
    (wheel,) = (tmp_path / "dist").glob("gateport-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", wheel)
    freeze = run(py, "-m", "pip", "freeze").lower()
    assert "torch" not in freeze and "onnx" not in freeze and "keras" not in freeze
    assert "autoencoder_bilstm.h5" in run(env_dir / "bin" / "gateport", "inspect", MODEL)
    run(py, "-m", "converters", "convert", MODEL, "--to", "torch", "-o", tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"model.py", "model.safetensors"}
    files = run(py, "-c", "import converters, pathlib; print(sorted(p.name for p in "
                          "pathlib.Path(converters.__file__).parent.iterdir()))")
    assert "py.typed" in files
