"""gateport: move trained Keras recurrent networks to PyTorch and ONNX, gate by gate, verified.

Importing this package needs only numpy and h5py; torch, onnx, onnxruntime and keras are imported
lazily by the writers and runtimes that need them.

>>> import converters
>>> converters.convert("model.h5", "onnx", "model.onnx")
PosixPath('model.onnx')
"""
from .version import __version__  # noqa: E402,F401

from .api import convert, inspect, load_into, read, to_keras, to_onnx, to_torch, verify  # noqa: E402
from .errors import (  # noqa: E402
    FormatError, GateportError, ModelNotFoundError, OutputError, UnsafeError, UnsupportedError, UsageError,
)
from .notes import GateportNote  # noqa: E402

__all__ = [
    "convert", "inspect", "load_into", "read", "to_keras", "to_onnx", "to_torch", "verify",
    "FormatError", "GateportError", "GateportNote", "ModelNotFoundError", "OutputError", "UnsafeError",
    "UnsupportedError", "UsageError",
]
