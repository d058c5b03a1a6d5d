"""Keras layer classes: one row per class, read by the Keras readers and the Keras writer alike.

A row says which IR op the class reads into (and the Keras writer writes it from), whether Keras gives
it weights, how it treats a mask, under which name a ``.keras`` file stores it, and which of its
option defaults depend on the Keras version. Sources: keras/src/layers/**, keras/src/utils/naming.py,
tf_keras/src/layers/**; SEMANTICS.md §3.3 (defaults by version), §3.7 (storage).

Mask rules (Keras 3): ``mask_arg`` "uses" = the call takes ``mask`` and its result depends on it,
"ignores" = takes it and ignores it at inference (BatchNormalization), None = no mask argument;
``mask_out`` "passes" = the input's mask unchanged (``supports_masking`` with the default
compute_mask), "makes" = its own (Masking; Embedding with mask_zero), "sequence" = the input's mask
when it returns sequences (recurrent layers), "merges" = logical_or of its inputs' masks, "concat" =
Concatenate's per-input mask, "drops" = none, None = not recorded (a class the Keras writer never writes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .activations import keras_major


def to_snake_case(name: str) -> str:
    """Keras' own ``keras.src.utils.naming.to_snake_case`` (how a .keras file names a layer's group)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _minor(keras_version: str | None) -> int:
    """The minor version (``"2.2.4-tf"`` -> 2); 0 when there is none."""
    parts = str(keras_version or "").split(".")
    digits = re.findall(r"^\d+", parts[1]) if len(parts) > 1 else []
    return int(digits[0]) if digits else 0


def default_recurrent_activation(keras_version: str | None) -> str:
    """LSTM/GRU ``recurrent_activation`` when a config omits it: ``hard_sigmoid`` in Keras 1
    (``inner_activation``) and Keras 2.0-2.2 (keras/layers/recurrent.py, tag 2.2.5), ``sigmoid`` from
    Keras 2.3.0 on, in tf.keras / tf-keras 2.x (v2 layers) and Keras 3 (SEMANTICS.md §3.3)."""
    major = keras_major(keras_version)
    return "hard_sigmoid" if major == 1 or (major == 2 and _minor(keras_version) <= 2) else "sigmoid"


def default_reset_after(keras_version: str | None) -> bool:
    """GRU ``reset_after`` when a config omits it: False in Keras 1 and standalone Keras 2.0-2.3
    (it appeared in 2.1.5), True in tf.keras / tf-keras 2.4+ (v2 GRU) and Keras 3 (SEMANTICS.md §3.3)."""
    major = keras_major(keras_version)
    return major >= 3 or (major == 2 and _minor(keras_version) >= 4)


def default_conv_lstm_recurrent_activation(keras_version: str | None) -> str:
    """ConvLSTM1D/2D ``recurrent_activation`` when a config omits it: ``hard_sigmoid`` in Keras 2 and
    tf-keras 2.x (tf_keras/src/layers/rnn/conv_lstm2d.py, 2.21), ``sigmoid`` in Keras 3."""
    return "sigmoid" if keras_major(keras_version) >= 3 else "hard_sigmoid"


_LSTM_DEFAULTS = {"recurrent_activation": default_recurrent_activation}
_GRU_DEFAULTS = {**_LSTM_DEFAULTS, "reset_after": default_reset_after}
_CONV_LSTM_DEFAULTS = {"recurrent_activation": default_conv_lstm_recurrent_activation}
#: the version-dependent defaults of LSTM and GRU layers and cells
VERSION_DEFAULTS = _GRU_DEFAULTS


@dataclass(frozen=True)
class KerasClass:
    """One Keras layer class."""

    name: str
    op: str | None  # the IR op it reads into; None: a wrapper or container (depends on what it holds)
    weights: bool | None  # Keras gives it weights whatever its config; None: depends on its config
    mask_arg: str | None = None  # "uses" | "ignores" | None
    mask_out: str | None = None  # "passes" | "makes" | "sequence" | "merges" | "concat" | "drops" | None
    cell: bool = False  # a cell inside RNN(...), not a layer
    written: bool = False  # the class the Keras writer writes for its op
    #: option -> its default as a function of the Keras version that wrote the file
    version_defaults: Mapping[str, Callable[[str | None], Any]] = field(default_factory=dict)

    @property
    def storage(self) -> str:
        """Its group in a ``.keras`` file's weights: ``layers/<storage>[_k]``."""
        return to_snake_case(self.name)


def _rows(names, op, weights, **kw) -> list[KerasClass]:
    return [KerasClass(n, op, weights, **kw) for n in names]


_RECURRENT: dict[str, Any] = dict(weights=True, mask_arg="uses", mask_out="sequence")
_PASS: dict[str, Any] = dict(mask_out="passes")
_DROP: dict[str, Any] = dict(mask_out="drops")
_ROWS: list[KerasClass] = [
    KerasClass("LSTM", "lstm", written=True, version_defaults=_LSTM_DEFAULTS, **_RECURRENT),
    KerasClass("GRU", "gru", written=True, version_defaults=_GRU_DEFAULTS, **_RECURRENT),
    KerasClass("SimpleRNN", "simple_rnn", written=True, **_RECURRENT),
    KerasClass("CuDNNLSTM", "lstm", **_RECURRENT),  # fixed tanh/sigmoid cells (keras_recurrent.py)
    KerasClass("CuDNNGRU", "gru", **_RECURRENT),
    KerasClass("LSTMCell", "lstm", True, cell=True, version_defaults=_LSTM_DEFAULTS),
    KerasClass("GRUCell", "gru", True, cell=True, version_defaults=_GRU_DEFAULTS),
    KerasClass("SimpleRNNCell", "simple_rnn", True, cell=True),
    # written as ConvLSTM{rank}D; a masked input is refused by the reader, so no mask reaches them
    *_rows(("ConvLSTM1D", "ConvLSTM2D"), "conv_lstm", True, written=True, version_defaults=_CONV_LSTM_DEFAULTS,
           **_DROP),
    KerasClass("Bidirectional", None, written=True, **_RECURRENT),
    KerasClass("RNN", None, **_RECURRENT),
    KerasClass("TimeDistributed", None, None),
    KerasClass("Dense", "dense", True, written=True, **_PASS),
    # a Dense-like equation only (readers/keras_layers.einsum_dense); no supports_masking in Keras 3
    KerasClass("EinsumDense", "dense", True, **_DROP),
    KerasClass("Conv1D", "conv1d", True, written=True, **_DROP),
    *_rows(("DepthwiseConv1D", "SeparableConv1D", "SeparableConvolution1D"), "conv1d", True),
    KerasClass("Conv1DTranspose", "conv1d_transpose", True, written=True, **_DROP),  # no supports_masking
    KerasClass("Convolution1DTranspose", "conv1d_transpose", True),  # tf-keras' alias
    KerasClass("Embedding", "embedding", True, mask_out="makes", written=True),
    KerasClass("BatchNormalization", "batch_norm", True, mask_arg="ignores", written=True, **_PASS),
    KerasClass("Activation", "activation", False, written=True, **_PASS),
    KerasClass("Softmax", "activation", False),
    KerasClass("Masking", "masking", False, mask_out="makes", written=True),
    KerasClass("ReLU", "relu", False, written=True, **_PASS),
    KerasClass("LeakyReLU", "relu", False),
    KerasClass("ELU", "elu", False, written=True, **_PASS),
    KerasClass("PReLU", "prelu", True, written=True, **_PASS),
    KerasClass("GlobalMaxPooling1D", "global_pool", False, written=True, **_DROP),
    KerasClass("GlobalAveragePooling1D", "global_pool", False, mask_arg="uses", written=True, **_DROP),
    *_rows(("GlobalMaxPool1D", "GlobalAvgPool1D"), "global_pool", False),  # Keras' aliases
    *_rows(("MaxPooling1D", "AveragePooling1D"), "pool1d", False, written=True, **_DROP),
    *_rows(("MaxPool1D", "AvgPool1D"), "pool1d", False),
    # images (batch, height, width, channels), channels last (readers/keras_conv2d.py); no supports_masking
    KerasClass("Conv2D", "conv2d", True, written=True, **_DROP),
    KerasClass("Convolution2D", "conv2d", True),  # tf-keras' alias
    # volumes / frame sequences (batch, depth, height, width, channels), channels last (readers/keras_conv2d.py)
    KerasClass("Conv3D", "conv3d", True, written=True, **_DROP),
    KerasClass("Convolution3D", "conv3d", True),  # tf-keras' alias
    *_rows(("MaxPooling2D", "AveragePooling2D"), "pool2d", False, written=True, **_DROP),
    *_rows(("MaxPool2D", "AvgPool2D"), "pool2d", False),
    KerasClass("ZeroPadding2D", "zero_pad2d", False, written=True, **_DROP),
    # the max / mean over height and width: an IR reduce, written back as keras.ops.max / mean
    *_rows(("GlobalMaxPooling2D", "GlobalAveragePooling2D", "GlobalMaxPool2D", "GlobalAvgPool2D"), "reduce", False,
           **_DROP),
    KerasClass("Permute", "permute", False, written=True, **_DROP),
    KerasClass("LayerNormalization", "layer_norm", None, written=True, **_PASS),  # gamma/beta where scale/center
    KerasClass("UnitNormalization", "unit_norm", False, written=True, **_PASS),
    # Keras 3 passes the mask on (supports_masking); tf-keras' Normalization and Rescaling drop it (the reader)
    KerasClass("Normalization", "normalization", None, written=True, **_PASS),  # weights unless mean/variance given
    KerasClass("Rescaling", "rescaling", False, written=True, **_PASS),
    KerasClass("RMSNormalization", "rms_norm", True, written=True, **_DROP),  # no supports_masking in Keras 3
    KerasClass("GroupNormalization", "group_norm", None, written=True, **_PASS),  # gamma/beta where scale/center
    KerasClass("Cropping1D", "crop1d", False, written=True, **_DROP),
    KerasClass("ZeroPadding1D", "zero_pad1d", False, written=True, **_DROP),
    KerasClass("UpSampling1D", "upsample1d", False, written=True, **_DROP),
    # the identity at inference (the Keras writer writes the identity as Dropout(rate=0))
    KerasClass("Dropout", "identity", False, written=True, **_PASS),
    *_rows(("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
            "AlphaDropout", "ActivityRegularization", "Identity"), "identity", False),
    KerasClass("Flatten", "flatten", False, written=True, **_DROP),
    KerasClass("Reshape", "reshape", False, written=True, **_DROP),
    KerasClass("RepeatVector", "repeat_vector", False, written=True, **_DROP),
    KerasClass("Concatenate", "concatenate", False, mask_out="concat", written=True),
    *[KerasClass(n, n.lower(), False, mask_out="merges", written=True)
      for n in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")],
    KerasClass("Merge", None, False),  # Keras 1 Merge(mode=...): one of the merges above
    KerasClass("Dot", "dot", False),
    # a TensorFlow call (tf-keras): its op depends on its function (readers/keras_tf_ops.py)
    *_rows(("TFOpLambda", "SlicingOpLambda"), None, False, **_DROP),
    KerasClass("Attention", "attention", None),  # scale where use_scale, concat_score_weight where concat
    KerasClass("AdditiveAttention", "attention", None),
    KerasClass("MultiHeadAttention", "multi_head_attention", True),
]

#: Keras class -> its row.
CLASSES: dict[str, KerasClass] = {c.name: c for c in _ROWS}


def classes(**where) -> tuple[str, ...]:
    """The class names whose rows have every ``field=value`` of ``where``, in table order."""
    return tuple(c.name for c in _ROWS if all(getattr(c, k) == v for k, v in where.items()))


def ops_of(names) -> dict[str, str]:
    """Keras class -> IR op for the classes ``names``."""
    return {n: op for n in names if (op := CLASSES[n].op) is not None}


#: IR op -> the Keras class the writer writes for it (computed: the rows marked ``written``).
WRITTEN_CLASS: dict[str, str] = {c.op: c.name for c in _ROWS if c.written and c.op is not None}
#: IR recurrent op -> its Keras class.
RECURRENT_CLASS = {op: WRITTEN_CLASS[op] for op in ("lstm", "gru", "simple_rnn")}
#: Keras recurrent layers and cells -> IR op.
LAYER_KINDS = ops_of(c.name for c in _ROWS if c.mask_out == "sequence" and c.op is not None)
CELL_KINDS = ops_of(classes(cell=True))
#: Layer classes that always have weights (Keras gives them variables whatever their config).
WEIGHTED = frozenset(c.name for c in _ROWS if c.weights is True and not c.cell)
#: The identity at inference, and the element-wise merges (class -> IR op).
IDENTITY_CLASSES = classes(op="identity")
MERGE_OPS = ops_of(classes(mask_out="merges"))
#: Layers whose call takes ``mask``, those whose result depends on it, and those passing it on.
MASK_ARG = tuple(c.name for c in _ROWS if c.mask_arg is not None)
#: Recurrent layers and wrappers: their output keeps the input's mask when it returns sequences.
RECURRENT_LAYERS = classes(mask_out="sequence")
MASK_USERS = classes(mask_arg="uses")
PASS_MASK = classes(mask_out="passes")


def version_default(class_name: str, option: str, keras_version: str | None) -> Any:
    """The default of ``option`` of Keras class ``class_name`` in a file written by ``keras_version``."""
    return CLASSES[class_name].version_defaults[option](keras_version)
