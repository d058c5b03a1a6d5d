"""Source text of the helpers a generated numpy ``model.py`` may need, and which ones need which.

:mod:`converters.writers.numpy_code` emits only the helpers a model uses, in the order of
:data:`HELPERS`. The loop follows Keras' generic ``backend.rnn`` (keras/src/backend/torch/rnn.py,
tf_keras/src/backend.py ``rnn``), as :mod:`converters.reference_rnn` does; the activations are those
of :mod:`converters.activations`.
"""
from __future__ import annotations

from ..activations import SELU_ALPHA_TEXT, SELU_SCALE_TEXT, column
from .numpy_attention import HELPERS as ATTENTION_HELPERS
from .numpy_conv_lstm import HELPERS as CONV_LSTM_HELPERS
from .numpy_conv2d import HELPERS as CONV2D_HELPERS

_KERAS_RNN = '''
def keras_rnn(cell, weights, x, states, go_backwards=False, mask=None, zero_output_for_mask=False):
    """Keras' recurrent loop: ``cell`` over the time axis of x (batch, time, features).

    Returns (outputs (batch, time, units) in processing order, final states). go_backwards walks
    the input from its last step and the outputs stay in that order, as in Keras. At a masked step
    the states keep their values and the output repeats the previous output (zeros before the
    first step), or is zeros with zero_output_for_mask.
    """
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    output = np.zeros_like(states[0])
    outputs = []
    for t in steps:
        new_output, new_states = cell(x[:, t], *states, **weights)
        if mask is None:
            output, states = new_output, new_states
        else:
            keep = mask[:, t, None]
            if zero_output_for_mask:
                output = np.zeros_like(output)
            output = np.where(keep, new_output, output)
            states = [np.where(keep, new, old) for new, old in zip(new_states, states)]
        outputs.append(output)
    return np.stack(outputs, axis=1), states
'''

_CONV1D = '''
def conv1d(x, kernel, bias, strides, dilation_rate, padding, groups=1):
    """Keras Conv1D, channels last: y[t] = sum_j x[t*strides + j*dilation_rate] @ kernel[j] + bias.

    kernel is Keras' (kernel_size, in / groups, filters); padding 'same' follows TensorFlow's rule;
    each of the groups of consecutive filters reads its own block of consecutive channels.
    """
    span = (kernel.shape[0] - 1) * dilation_rate + 1
    left = right = 0
    if padding == "causal":
        left = span - 1
    elif padding == "same":
        total = max((-(-x.shape[1] // strides) - 1) * strides + span - x.shape[1], 0)
        left, right = total // 2, total - total // 2
    x = np.pad(x, ((0, 0), (left, right), (0, 0)))
    n = (x.shape[1] - span) // strides + 1
    taps = range(kernel.shape[0])
    end = (n - 1) * strides + 1
    d = dilation_rate
    c, f = kernel.shape[1], kernel.shape[2] // groups
    return np.concatenate([sum(x[:, j * d:j * d + end:strides, g * c:(g + 1) * c] @ kernel[j, :, g * f:(g + 1) * f]
                               for j in taps) for g in range(groups)], axis=-1) + bias
'''

_BATCH_NORM = '''
def batch_norm(x, axis, epsilon, gamma, beta, moving_mean, moving_variance):
    """Keras BatchNormalization at inference, on feature axis ``axis`` (batch included)."""
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    mean, variance = moving_mean.reshape(shape), moving_variance.reshape(shape)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma.reshape(shape) + beta.reshape(shape)
'''

_SIGMOID = '''
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))
'''

_HARD_SIGMOID_KERAS2 = '''
def hard_sigmoid_keras2(x):
    """Keras 1/2 and tf.keras hard_sigmoid."""
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)
'''

_HARD_SIGMOID_KERAS3 = '''
def hard_sigmoid_keras3(x):
    """Keras 3 hard_sigmoid: relu6(x + 3) / 6."""
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)
'''

_SOFTMAX = '''
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
'''

_SOFTSIGN = '''
def softsign(x):
    return x / (1.0 + np.abs(x))
'''

_ELU = '''
def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
'''

_SELU = f'''
def selu(x):
    alpha, scale = {SELU_ALPHA_TEXT}, {SELU_SCALE_TEXT}
    return scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
'''

_SWISH = '''
def swish(x):
    return x * sigmoid(x)
'''

_GELU = '''
def gelu(x):
    """Exact gelu: 0.5 x (1 + erf(x / sqrt(2)))."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(np.asarray(x) / math.sqrt(2.0)))
'''

_GELU_TANH = '''
def gelu_tanh(x):
    """gelu(approximate=True)."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))
'''

_LOG_SOFTMAX = '''
def log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
'''

_SHRINK = '''
def hard_shrink(x):
    return np.where(np.abs(x) > 0.5, x, 0.0)


def soft_shrink(x):
    y = hard_shrink(x)
    return y - np.sign(y) * 0.5
'''

_SMALL = {  # name -> body of an element-wise helper of x (Keras 3 activations, default arguments)
    "leaky_relu": "np.where(x >= 0, x, 0.2 * x)",
    "mish": "x * np.tanh(np.logaddexp(0.0, x))",
    "hard_silu": "x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)",
    "tanh_shrink": "x - np.tanh(x)",
    "sparse_plus": "np.where(x <= -1, 0.0, np.where(x < 1, 0.25 * (x + 1) ** 2, x))",
    "squareplus": "(x + np.sqrt(x * x + 4.0)) / 2",
}

_POOL1D = '''
def pool1d(x, mode, pool_size, strides, padding):
    """Max/AveragePooling1D over time; 'same' pads as TensorFlow, the padding left out of max and mean."""
    left = right = 0
    if padding == "same":
        total = max((-(-x.shape[1] // strides) - 1) * strides + pool_size - x.shape[1], 0)
        left, right = total // 2, total - total // 2
    valid = np.pad(np.ones(x.shape[1], bool), (left, right))
    x = np.pad(x, ((0, 0), (left, right), (0, 0)))
    out = []
    for i in range(0, x.shape[1] - pool_size + 1, strides):
        window = x[:, i:i + pool_size][:, valid[i:i + pool_size]]
        out.append(window.max(axis=1) if mode == "max" else window.mean(axis=1))
    return np.stack(out, axis=1)
'''

_LAYER_NORM = '''
def layer_norm(x, axes, epsilon, gamma=1.0, beta=0.0):
    """Keras LayerNormalization over ``axes``: (x - mean) / sqrt(var + epsilon) * gamma + beta."""
    mean = x.mean(axis=axes, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta
'''

_UNIT_NORM = '''
def unit_norm(x, axes):
    """Keras UnitNormalization: x * min(1 / sqrt(sum(x ** 2)), 1e12)."""
    with np.errstate(divide="ignore"):
        return x * np.minimum(1.0 / np.sqrt((x * x).sum(axis=axes, keepdims=True)), 1e12)
'''

#: helper name -> (source, helpers it needs). Emitted in this order.
HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sigmoid": (_SIGMOID, ()),
    "hard_sigmoid_keras2": (_HARD_SIGMOID_KERAS2, ()),
    "hard_sigmoid_keras3": (_HARD_SIGMOID_KERAS3, ()),
    "softmax": (_SOFTMAX, ()),
    "softsign": (_SOFTSIGN, ()),
    "elu": (_ELU, ()),
    "selu": (_SELU, ()),
    "swish": (_SWISH, ("sigmoid",)),
    "gelu": (_GELU, ()),
    "gelu_tanh": (_GELU_TANH, ()),
    "log_softmax": (_LOG_SOFTMAX, ()),
    "hard_shrink": (_SHRINK, ()),
    **{name: (f"\ndef {name}(x):\n    return {body}\n", ()) for name, body in _SMALL.items()},
    "keras_rnn": (_KERAS_RNN, ()),
    "conv1d": (_CONV1D, ()),
    "batch_norm": (_BATCH_NORM, ()),
    "pool1d": (_POOL1D, ()),
    "layer_norm": (_LAYER_NORM, ()),
    "unit_norm": (_UNIT_NORM, ()),
    **ATTENTION_HELPERS,
    **CONV_LSTM_HELPERS,
    **CONV2D_HELPERS,  # after keras_conv, which they call
}

#: IR activation -> (expression with ``{}`` for the argument, helper needed or None): the
#: ``numpy_code`` column of converters/activations.py.
ACTIVATIONS: dict[str, tuple[str, str | None]] = column("numpy_code")


def helper_source(names: set[str]) -> str:
    """The source of the helpers ``names`` (and what they need), in emission order."""
    wanted = set(names)
    for name in names:
        wanted.update(HELPERS[name][1])
    return "".join("\n" + HELPERS[n][0] for n in HELPERS if n in wanted)
