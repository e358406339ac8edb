"""optuna_gamma.tuner.builtin.models: shapes, hand-counted parameters, initialisation, errors,
seeding."""

from __future__ import annotations

import math

import pytest


torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from optuna_gamma.tuner.builtin.models import build_model  # noqa: E402
from optuna_gamma.tuner.builtin.models import count_parameters  # noqa: E402
from optuna_gamma.tuner.builtin.models import MODELS  # noqa: E402


def _conv(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * k * k * c_out + c_out


def _dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


@pytest.mark.parametrize(
    "name, shape",
    [
        ("thesis-cnn", (1, 28, 28)),
        ("keras-cifar-cnn", (3, 32, 32)),
        ("mlp", (64,)),
        ("thesis-cnn", (3, 32, 32)),
    ],
)
def test_output_shape(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name, shape, 10, seed=0)
    out = model(torch.randn(5, *shape))
    assert out.shape == (5, 10) and out.dtype == torch.float32
    assert build_model(name, shape, 3, seed=0)(torch.randn(2, *shape)).shape == (2, 3)


def test_keras_cifar_cnn_parameter_count() -> None:
    # 32x32 -same-> 32 -valid-> 30 -pool-> 15 -same-> 15 -valid-> 13 -pool-> 6: 64*6*6 = 2304
    # features.
    expected = (
        _conv(3, 32)
        + _conv(32, 32)
        + _conv(32, 64)
        + _conv(64, 64)
        + _dense(64 * 6 * 6, 512)
        + _dense(512, 10)
    )
    assert expected == 1_250_858  # Keras's model.summary() of the cifar10_cnn example
    model = build_model("keras-cifar-cnn", (3, 32, 32), 10)
    assert count_parameters(model) == expected
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2304, 512), (512, 10)]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25, 0.5]


def test_thesis_cnn_layers_and_parameter_count() -> None:
    # DeepConvNet: 28 -28 -28 -pool 14 -14 -16 (pad 2) -pool 8 -8 -8 -pool 4: 64*4*4 = 1024
    # features.
    expected = (
        _conv(1, 16)
        + _conv(16, 16)
        + _conv(16, 32)
        + _conv(32, 32)
        + _conv(32, 64)
        + _conv(64, 64)
        + _dense(1024, 50)
        + _dense(50, 10)
    )
    assert expected == 123_552
    model = build_model("thesis-cnn", (1, 28, 28), 10)
    assert count_parameters(model) == expected
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 7
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5]


def test_mlp_parameter_count() -> None:
    assert count_parameters(build_model("mlp", (64,), 10)) == _dense(64, 128) + _dense(128, 10)


def test_initialisation() -> None:
    """He-normal (std sqrt(2/fan_in)) for the thesis CNN, Glorot-uniform for the Keras CNN."""
    thesis = build_model("thesis-cnn", (1, 28, 28), 10, seed=1)
    fc1 = [m for m in thesis.modules() if isinstance(m, nn.Linear)][0]  # 51,200 weights
    assert fc1.weight.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.03)
    conv6 = [m for m in thesis.modules() if isinstance(m, nn.Conv2d)][-1]  # 36,864 weights
    assert conv6.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.03)
    assert all(
        m.bias is not None and float(m.bias.detach().abs().max()) == 0.0
        for m in thesis.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    )

    keras = build_model("keras-cifar-cnn", (3, 32, 32), 10, seed=1)
    dense = [m for m in keras.modules() if isinstance(m, nn.Linear)][0]
    bound = math.sqrt(6 / (2304 + 512))
    assert dense.weight.abs().max().item() <= bound
    assert dense.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_wrong_input_shape_is_a_clear_error() -> None:
    model = build_model("thesis-cnn", (1, 28, 28), 10)
    with pytest.raises(
        ValueError, match=r"expects inputs of shape \(N, 1, 28, 28\), got \(2, 3, 32, 32\)"
    ):
        model(torch.zeros(2, 3, 32, 32))
    mlp = build_model("mlp", (64,), 10)
    with pytest.raises(ValueError, match=r"\(N, 64\), got \(4, 1, 8, 8\)"):
        mlp(torch.zeros(4, 1, 8, 8))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"'resnet'.*thesis-cnn, keras-cifar-cnn, mlp"):
        build_model("resnet", (1, 28, 28), 10)
    assert MODELS == ("thesis-cnn", "keras-cifar-cnn", "mlp")
    with pytest.raises(ValueError, match="image input_shape"):
        build_model("thesis-cnn", (784,), 10)
    with pytest.raises(ValueError, match="too small"):
        build_model("keras-cifar-cnn", (3, 8, 8), 10)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp", (0,), 10)
    with pytest.raises(ValueError, match="n_classes"):
        build_model("mlp", (64,), 1)
    with pytest.raises(ValueError, match="seed"):
        build_model("mlp", (64,), 10, seed=-3)


def test_seeded_construction_is_deterministic_and_leaves_global_rng_alone() -> None:
    before = torch.get_rng_state()
    a = build_model("keras-cifar-cnn", (3, 32, 32), 10, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    b = build_model("keras-cifar-cnn", (3, 32, 32), 10, seed=7)
    c = build_model("keras-cifar-cnn", (3, 32, 32), 10, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["body.0.weight"], sc["body.0.weight"])
