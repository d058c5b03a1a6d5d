"""The red team's tenth round (tests/attacks_round10.py), a sample in CI: the cases that once failed, a few of the
classes that did not (in their own processes, round 10's runner), and the two mechanisms fixed, in-process:

- an HDF5 dataset whose file type is no IEEE layout (a 4-byte float with its exponent below the mantissa, another
  exponent bias, a 16-bit float laid out as bfloat16, 32-bit integers of 16 bits at bit offset 8) is read through
  HDF5's conversion, as h5py reads it: it was viewed in place as the float32 / int32 h5py reports (the bytes of
  another number: verify against Keras failed), or refused as storing half what it declares;
- torch's advice after a refused global ('Please use torch.serialization.add_safe_globals([subprocess.Popen]) ...
  to allowlist this global') no longer reaches the refusal's line.

The full round: ``python tests/attacks_round10.py``.
"""
import h5py
import numpy as np
import pytest

import converters
from attacks_round3 import failures
from attacks_round10 import TRUSTING, _custom_float16, _custom_float32, _int_bits, build, run_case10
from converters import budget as budgets
from converters.errors import UnsafeError
from converters.readers import hdf5

#: cases that failed before their fix, and a few of the classes that did not
ONCE_FAILED = (".keras kernel a 4-byte float, exponent below the mantissa (verify)",
               "a pickle calling builtins.exec (inspect)", "a pickle calling subprocess.Popen (onnx)")
SAMPLE = ("weight_ih rebuilt with strides past the storage (inspect)", "a batch: M.h5 beside m.h5",
          "--force -o a folder holding the user's files (--to onnx)", "legacy .h5 kernel gzip chunks of 128 MiB (inspect)")

LAYOUTS = {"exponent below the mantissa": _custom_float32((31, 0, 8, 8, 23), None),
           "exponent bias 120": _custom_float32(None, 120), "16 bits laid out as bfloat16": _custom_float16,
           "int32 of 16 bits at offset 8": _int_bits}


@pytest.mark.parametrize("edit", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_a_dataset_of_another_layout_reads_as_h5py_reads_it(tmp_path, edit):
    values = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    src = tmp_path / "w.h5"
    with h5py.File(src, "w") as f:
        f["w"] = values
        edit(f, "w")
    with h5py.File(src, "r") as f:
        expected = f["w"][()]
        mapped = hdf5.mapped_file(f)
        assert mapped is not None
        found = hdf5.read_dataset(f["w"], budgets.Budget(1 << 20), str(src), mapped)
    np.testing.assert_array_equal(found, expected.astype(found.dtype))
    assert np.abs(found.astype(np.float64) - expected.astype(np.float64)).max() == 0


@pytest.mark.parametrize("module, name", [("builtins", "exec"), ("subprocess", "Popen"), ("torch", "load")])
def test_a_refused_global_comes_without_advice_to_allow_it(tmp_path, module, name):
    torch = pytest.importorskip("torch")
    import zipfile

    src = tmp_path / "m.pt"
    torch.save({"w": torch.zeros(2)}, src)
    with zipfile.ZipFile(src) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    pkl = b"\x80\x02}(X\x01\x00\x00\x00wc" + f"{module}\n{name}\n".encode() + b"(X\x01\x00\x00\x00xtRu."
    with zipfile.ZipFile(src, "w") as z:
        for n, d in members:
            z.writestr(n, pkl if n.endswith("/data.pkl") else d)
    with pytest.raises(UnsafeError) as info:
        converters.read(src)
    text = str(info.value)
    assert "m.pt" in text and name in text and "not an allowed global" in text
    assert not [advice for advice in TRUSTING if advice in text], text


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("round10") / "cases"
    built = build(folder, groups=("h5", "torch", "out"))
    return folder, [c for c in built if c.name in ONCE_FAILED + SAMPLE]


def test_cases_that_once_failed_and_a_sample(battery):
    folder, cases = battery
    assert sorted(c.name for c in cases) == sorted(set(ONCE_FAILED + SAMPLE))
    found = failures(cases, run_case10, folder, timeout=120)
    assert not found, "\n".join(found)
