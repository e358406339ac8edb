"""The networks of the thesis and of its experiments.

Three models, all built by :func:`build_model`:

``"thesis-cnn"``
    The MNIST CNN of the thesis (table 2: 28x28x1 in, 10 out, six hidden layers, ReLU, He
    initialisation, dropout 0.5, SGD with mini-batch 50 and weight decay 0.001). The table does
    not list the layers; they are those of the ``DeepConvNet`` of Saito, *Deep Learning from
    Scratch* (2016), ch. 8, the source of the thesis's experiment set-up (500 training images,
    20% validation, He-initialised ReLU network, dropout 0.5)::

        conv3x3(16, pad 1) - ReLU - conv3x3(16, pad 1) - ReLU - maxpool2
        conv3x3(32, pad 1) - ReLU - conv3x3(32, pad 2) - ReLU - maxpool2
        conv3x3(64, pad 1) - ReLU - conv3x3(64, pad 1) - ReLU - maxpool2
        dense(50) - ReLU - dropout(0.5) - dense(n_classes)

    For 1x28x28 inputs the feature map sizes are 28-28-14-14-16-8-8-8-4, so the first dense layer
    sees 64*4*4 = 1024 features. All weights use He (Kaiming) normal initialisation
    (``std = sqrt(2 / fan_in)``, exactly the book's ``sqrt(2 / pre_node_num)``), biases are zero.
    Deviation: the book also applies dropout to the output logits; that is omitted here because
    it only rescales the logits at random (PyTorch's dropout is the inverted one) and the thesis
    lists dropout as a regulariser of the hidden layers.

``"keras-cifar-cnn"``
    The Keras CIFAR-10 example CNN (``keras/examples/cifar10_cnn.py``)::

        conv3x3(32, same) - ReLU - conv3x3(32, valid) - ReLU - maxpool2 - dropout(0.25)
        conv3x3(64, same) - ReLU - conv3x3(64, valid) - ReLU - maxpool2 - dropout(0.25)
        flatten - dense(512) - ReLU - dropout(0.5) - dense(n_classes)

    Keras's default initialisation is kept: Glorot-uniform weights, zero biases. For 3x32x32
    inputs the feature maps are 32-30-15-15-13-6, i.e. 2304 features before the dense layer and
    1,250,858 parameters in all (Keras's own ``model.summary()`` figure).

``"mlp"``
    A small multi-layer perceptron for scikit-learn's 8x8 digits (or any small input):
    ``flatten - dense(128) - ReLU - dense(n_classes)``, He-normal weights, zero biases.

Every model checks the shape of its input in ``forward`` (a tuple comparison, negligible next
to a convolution) and raises a :class:`ValueError` that names the expected and the received
shape. Construction with a ``seed`` is deterministic and does not touch the global RNG.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import torch
from torch import nn


__all__ = ["MODELS", "ShapeCheckedModel", "build_model", "count_parameters"]

MODELS = ("thesis-cnn", "keras-cifar-cnn", "mlp")


class ShapeCheckedModel(nn.Module):
    """A ``nn.Sequential`` body whose ``forward`` first checks the per-sample input shape.

    Args:
        name: The model's name (one of :data:`MODELS`), used in error messages.
        input_shape: Per-sample input shape the body was built for, e.g. ``(1, 28, 28)``.
        body: The layers.
    """

    def __init__(self, name: str, input_shape: tuple[int, ...], body: nn.Sequential) -> None:
        super().__init__()
        self.name = name
        self.input_shape = tuple(input_shape)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != self.input_shape:  # torch.Size is a tuple
            raise ValueError(
                f"model {self.name!r} expects inputs of shape (N, "
                f"{', '.join(map(str, self.input_shape))}),"
                f" got {tuple(x.shape)}"
            )
        for layer in self.body:  # iterate here rather than call body: one module call less
            x = layer(x)
        return x

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_shape={self.input_shape}"


def _conv_out(size: int, kernel: int, pad: int) -> int:
    return size + 2 * pad - kernel + 1


def _thesis_cnn(input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    c, h, w = _image_shape("thesis-cnn", input_shape)
    layers: list[nn.Module] = []
    in_ch = c
    # (filters, padding) pairs of the book's DeepConvNet; a 2x2 max-pool after every pair.
    spec = [((16, 1), (16, 1)), ((32, 1), (32, 2)), ((64, 1), (64, 1))]
    for pair in spec:
        for filters, pad in pair:
            layers += [nn.Conv2d(in_ch, filters, 3, padding=pad), nn.ReLU()]
            h, w = _conv_out(h, 3, pad), _conv_out(w, 3, pad)
            in_ch = filters
        layers.append(nn.MaxPool2d(2))
        h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(
                f"input_shape {input_shape} is too small for 'thesis-cnn' (needs H, W >= 8)"
            )
    layers += [
        nn.Flatten(),
        nn.Linear(in_ch * h * w, 50),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(50, n_classes),
    ]
    body = nn.Sequential(*layers)
    for m in body.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return body


def _keras_cifar_cnn(input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    c, h, w = _image_shape("keras-cifar-cnn", input_shape)
    # "same" 3x3 keeps the size, "valid" 3x3 removes 2, pool halves (floor).
    for _ in range(2):
        h, w = (h - 2) // 2, (w - 2) // 2
    if h < 1 or w < 1:
        raise ValueError(
            f"input_shape {input_shape} is too small for 'keras-cifar-cnn' (needs H, W >= 10)"
        )
    body = nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(64 * h * w, 512),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(512, n_classes),
    )
    for m in body.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)  # Keras "glorot_uniform"
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return body


def _mlp(input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    n_in = math.prod(input_shape)
    body = nn.Sequential(nn.Flatten(), nn.Linear(n_in, 128), nn.ReLU(), nn.Linear(128, n_classes))
    for m in body.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return body


def _image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(f"model {name!r} needs an image input_shape (C, H, W), got {input_shape}")
    c, h, w = input_shape
    return c, h, w


_BUILDERS = {"thesis-cnn": _thesis_cnn, "keras-cifar-cnn": _keras_cifar_cnn, "mlp": _mlp}


def build_model(
    name: str, input_shape: Sequence[int], n_classes: int, *, seed: int | None = None
) -> nn.Module:
    """Build one of :data:`MODELS` (see the module docstring for the layers).

    Args:
        name: ``"thesis-cnn"``, ``"keras-cifar-cnn"`` or ``"mlp"``.
        input_shape: Per-sample input shape: ``(C, H, W)`` for the CNNs (e.g. ``(1, 28, 28)``,
            ``(3, 32, 32)``), anything for the MLP (e.g. ``(64,)`` for digits). Usually
            :attr:`optuna_gamma.tuner.builtin.data.DatasetSplits.input_shape`.
        n_classes: Number of outputs (logits), at least 2.
        seed: If given, the weights are drawn from a private ``torch`` RNG seeded with it (the
            global RNG is left untouched), so the same seed builds the same weights.

    Returns:
        The model on CPU, in training mode; ``forward`` raises :class:`ValueError` for inputs of
        another per-sample shape.

    Raises:
        ValueError: Unknown ``name`` (the message lists :data:`MODELS`), a malformed or too small
            ``input_shape``, ``n_classes < 2`` or a bad ``seed``.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"input_shape must be a sequence of positive ints, got {input_shape!r}"
        ) from None
    if (
        not shape
        or any(s < 1 for s in shape)
        or any(isinstance(s, bool) or int(s) != s for s in input_shape)
    ):
        raise ValueError(f"input_shape must be a sequence of positive ints, got {input_shape!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be None or a non-negative int, got {seed!r}")
    builder = _BUILDERS[name]
    if seed is None:
        body = builder(shape, n_classes)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            body = builder(shape, n_classes)
    return ShapeCheckedModel(name, shape, body)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
