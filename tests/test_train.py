import dataclasses

import numpy as np
import pytest

import fnn
from fnn import data, metrics
from fnn.train import (
    CONSTRAINTS,
    OPTIMIZER_FIELDS,
    ConfigError,
    TrainConfig,
    TrainingDiverged,
    fit,
    train_step,
    validate,
)

# every test here runs on both paths of the updates (NumPy, and numba's fused loops)
pytestmark = pytest.mark.usefixtures("update_path")


def blobs(n=600, classes=3, features=12, seed=0, noise=1.0):
    """Gaussian blobs around random centres: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, features)) * 3
    y = rng.integers(0, classes, n)
    x = (centres[y] + noise * rng.standard_normal((n, features))).astype(np.float32)
    cut = int(0.8 * n)
    return data.Splits(x[:cut], y[:cut], x[cut:], y[cut:], x[:0], y[:0])


SMALL = TrainConfig(epochs=3, batch_size=16, num_layers=1, hidden_size=16, log_every=10)


def params_equal(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(fnn.tree_leaves(a), fnn.tree_leaves(b), strict=True)
    )


def test_fit_learns_and_records_history():
    params, history = fit(SMALL, blobs())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert history["epochs"][-1]["val_accuracy"] > 0.9
    assert history["epochs"][-1]["train_loss"] < history["epochs"][0]["train_loss"] * 1.01
    steps_per_epoch = -(-480 // 16)
    assert [s["step"] for s in history["steps"]] == list(range(10, 3 * steps_per_epoch + 1, 10))
    assert list(params) == ["layer_0", "layer_1"]
    assert params["layer_0"]["w"].shape == (12, 16) and params["layer_1"]["w"].shape == (16, 3)


def test_same_seed_bit_identical_other_seed_different():
    config = dataclasses.replace(SMALL, dropout=0.2)
    first, history = fit(config, blobs())
    second, history_again = fit(config, blobs())
    assert params_equal(first, second)
    assert history["steps"] == history_again["steps"]
    third, _ = fit(dataclasses.replace(config, seed=1), blobs())
    assert not params_equal(first, third)


@pytest.mark.parametrize("batch_size", [1, 7, 480, 485])
def test_every_batch_size_works(batch_size):
    config = dataclasses.replace(SMALL, epochs=1, batch_size=batch_size, log_every=1)
    _, history = fit(config, blobs())
    assert history["steps"][-1]["step"] == -(-480 // batch_size)


def test_divergence_raises_with_advice():
    # ReLU units grow without bound at this step size: the weights overflow float32 to inf and
    # the logits become inf - inf = nan.
    config = dataclasses.replace(SMALL, optimizer="sgd", activation="relu", learning_rate=1e30)
    with pytest.raises(TrainingDiverged, match="lower learning rate"):
        fit(config, blobs())


def test_early_stopping_returns_the_best_parameters():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 30)).astype(np.float32)
    y = rng.integers(0, 5, 300)  # random labels: validation loss rises once it memorises
    splits = data.Splits(x[:200], y[:200], x[200:], y[200:], x[:0], y[:0])
    config = TrainConfig(
        epochs=60, batch_size=8, num_layers=2, hidden_size=64, learning_rate=3e-3, patience=2
    )
    params, history = fit(config, splits)
    assert history["stopped_early"] and len(history["epochs"]) < 60
    best = history["epochs"][history["best_epoch"] - 1]
    assert len(history["epochs"]) == history["best_epoch"] + 2
    assert best["val_loss"] == min(e["val_loss"] for e in history["epochs"])
    result = metrics.evaluate(params, splits.x_val, splits.y_val, activation=config.activation)
    assert result["loss"] == pytest.approx(best["val_loss"], rel=1e-6)


def test_every_optimizer_and_loss_trains():
    for optimizer in fnn.optimizers.OPTIMIZERS:
        for loss in ("cross_entropy", "mean_squared_error"):
            lr = 0.1 if optimizer in ("sgd", "momentum", "nag") else 3e-3
            config = dataclasses.replace(
                SMALL, optimizer=optimizer, loss=loss, learning_rate=lr, epochs=4
            )
            _, history = fit(config, blobs())
            assert history["epochs"][-1]["val_accuracy"] > 0.8, (optimizer, loss)


def test_train_step_is_pure():
    params = fnn.init_mlp([4, 3, 2])
    copy = fnn.tree_map(np.copy, params)
    opt = fnn.optimizers.adam(1e-2)
    state = opt.init(params)
    step = train_step(opt, activation="tanh", loss="cross_entropy")
    new_params, _, value = step(params, state, np.ones((3, 4)), np.array([0, 1, 0]))
    assert params_equal(params, copy) and not params_equal(new_params, params)
    assert isinstance(value, float)


@pytest.mark.parametrize(
    "name, value",
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("num_layers", -1),
        ("hidden_size", 0),
        ("learning_rate", -1e-3),
        ("learning_rate", 0.0),
        ("momentum", 1.0),
        ("beta", -0.1),
        ("beta1", 1.0),
        ("beta2", 1.5),
        ("epsilon", 0.0),
        ("weight_decay", -0.5),
        ("val_fraction", 1.0),
        ("val_fraction", 0.0),
        ("dropout", 1.0),
        ("patience", 0),
        ("train_subset", 5),
        ("activation", "gelu"),
        ("optimizer", "lion"),
        ("loss", "hinge"),
        ("weight_init", "orthogonal"),
        ("dataset", "cifar100"),
        ("dtype", "float16"),
    ],
)
def test_validation_names_the_option_and_range(name, value):
    with pytest.raises(ConfigError) as info:
        validate(dataclasses.replace(TrainConfig(), **{name: value}))
    assert str(info.value).startswith(f"--{name} must be")
    assert "\n" not in str(info.value)


def test_validation_lowercases_choices_and_covers_every_range():
    config = validate(TrainConfig(activation="ReLU", weight_init="Xavier", optimizer="NAG"))
    assert (config.activation, config.weight_init, config.optimizer) == ("relu", "xavier", "nag")
    assert {*CONSTRAINTS, *OPTIMIZER_FIELDS} >= {
        "epochs", "batch_size", "num_layers", "hidden_size", "learning_rate", "momentum",
        "beta", "beta1", "beta2", "epsilon", "weight_decay", "val_fraction", "dropout",
    }  # fmt: skip


def test_eve_on_a_zero_loss_stops_with_a_message_not_a_traceback():
    # Perfectly separable blobs at a huge step: the loss reaches exactly 0, which Eve's
    # relative-change feedback cannot use.
    config = dataclasses.replace(SMALL, optimizer="eve", activation="relu", learning_rate=1e2)
    with pytest.raises(TrainingDiverged, match="eve needs a finite, positive loss"):
        fit(config, blobs(noise=0.01))


def test_config_values_are_type_checked():
    with pytest.raises(ConfigError, match="--epochs must be an integer; got 1.5"):
        validate(TrainConfig(epochs=1.5))
    with pytest.raises(ConfigError, match="--batch_size must be an integer; got True"):
        validate(TrainConfig(batch_size=True))
    with pytest.raises(ConfigError, match="--seed must be >= 0"):
        validate(TrainConfig(seed=-1))
    assert validate(TrainConfig(learning_rate="1e-3")).learning_rate == 0.001  # YAML 1.1 string


def test_cosine_decay_endpoints():
    from fnn.optimizers import cosine_decay_schedule

    schedule = cosine_decay_schedule(1.0, 10)

    def cosine_decay(step, total):
        assert total == 10
        return schedule(step)

    assert cosine_decay(0, 10) == 1.0 and cosine_decay(5, 10) == pytest.approx(0.5)
    assert cosine_decay(10, 10) == pytest.approx(0.0) and cosine_decay(12, 10) == cosine_decay(
        10, 10
    )


@pytest.mark.parametrize("name", ["momentum", "adam", "sgd"])
def test_cosine_schedule_matches_torch_cosine_annealing(name):
    """train_step with an optimizer on the cosine schedule (fnn.train.SCHEDULES["cosine"]) is
    torch's optimizer stepped with CosineAnnealingLR(T_max=T, eta_min=0): same params after T
    float64 updates."""
    torch = pytest.importorskip("torch")
    from fnn.train import SCHEDULES

    total, sizes, lr = 25, [6, 5, 3], 0.05
    hparams = {"momentum": {"momentum": 0.85, "weight_decay": 0.01}, "adam": {}, "sgd": {}}[name]
    rng = np.random.default_rng(3)
    params = fnn.init_mlp(sizes, init="xavier", seed=1, dtype="float64")
    pairs = zip(sizes, sizes[1:], strict=False)
    layers = [torch.nn.Linear(a, b, dtype=torch.float64) for a, b in pairs]
    with torch.no_grad():
        for i, layer in enumerate(layers):
            layer.weight.copy_(torch.from_numpy(params[f"layer_{i}"]["w"].T.copy()))
            layer.bias.copy_(torch.from_numpy(params[f"layer_{i}"]["b"].copy()))
    model = torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1])
    theirs = {
        "momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.85, weight_decay=0.01),
        "adam": lambda p: torch.optim.Adam(p, lr=lr),
        "sgd": lambda p: torch.optim.SGD(p, lr=lr),
    }[name](model.parameters())
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=total, eta_min=0)
    optimizer = fnn.optimizers.get(name, learning_rate=SCHEDULES["cosine"](lr, total), **hparams)
    state, step = (
        optimizer.init(params),
        train_step(optimizer, activation="tanh", loss="cross_entropy"),
    )
    for _ in range(total):
        x, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
        params, state, _ = step(params, state, x, y)
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(
            model(torch.from_numpy(x)), torch.from_numpy(y)
        ).backward()
        theirs.step()
        schedule.step()
    for i, layer in enumerate(layers):
        np.testing.assert_allclose(
            params[f"layer_{i}"]["w"], layer.weight.detach().numpy().T, atol=1e-12
        )
        np.testing.assert_allclose(
            params[f"layer_{i}"]["b"], layer.bias.detach().numpy(), atol=1e-12
        )


def test_fit_with_cosine_schedule_learns():
    params, history = fit(dataclasses.replace(SMALL, lr_schedule="cosine"), blobs())
    assert history["epochs"][-1]["val_accuracy"] > 0.9
    with pytest.raises(ConfigError, match="--lr_schedule must be one of constant, cosine"):
        validate(dataclasses.replace(SMALL, lr_schedule="linear"))


@pytest.mark.parametrize(
    "changes",
    [
        dict(optimizer="adam", dropout=0.2, lr_schedule="cosine"),
        dict(optimizer="eve"),
        dict(optimizer="nag"),
        dict(optimizer="adam", patience=1),
    ],  # fmt: skip
)
def test_resuming_from_any_epoch_gives_the_run_never_stopped_bit_for_bit(changes):
    import json

    from fnn.tree import ravel

    config = dataclasses.replace(SMALL, epochs=4, **changes)
    snapshots = []

    def keep(model, state, arrays):  # what a checkpoint holds, through JSON as on disk
        snapshots.append((json.loads(json.dumps(state)), {k: v.copy() for k, v in arrays.items()}))

    splits = blobs()
    params, history = fit(config, splits, on_checkpoint=keep)
    assert [state["epoch"] for state, _ in snapshots] == list(range(1, 5))

    def values(h):  # everything but the wall-clock seconds
        return [{k: v for k, v in e.items() if k != "seconds"} for e in h["epochs"]], h["steps"]

    for snapshot in snapshots[:3]:
        resumed, resumed_history = fit(config, splits, resume=snapshot)
        assert np.array_equal(ravel(resumed)[0], ravel(params)[0])
        assert values(resumed_history) == values(history)
