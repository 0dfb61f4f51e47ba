"""fnn.train.saved: a saved run's state.json and config.json read strictly, every hand edit or
damage one line naming the file and the key, never a traceback."""

import copy
import functools
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnn
from fnn import data
from fnn.train import TrainConfig, fit
from fnn.train.saved import STATE_KEYS, SavedStateError, check_config, check_state, read_json

NAME = "run/state.json"
SMALL = dict(epochs=2, batch_size=16, num_layers=1, hidden_size=8, log_every=5)
# Every shape of state fit writes: optimizer scalars or none, a dropout generator or null, early
# stopping, a schedule, no hidden layer, a hyperparameter kept in hparams.
SHAPES = {
    "eve": dict(optimizer="eve", dropout=0.2, hparams={"beta3": 0.99}),
    "sgd": dict(optimizer="sgd", dropout=0.0, patience=1, learning_rate=3.0, epochs=6),
    "adam": dict(optimizer="adam", dropout=0.1, lr_schedule="constant", epochs=3),
    "nag": dict(optimizer="nag", dropout=0.0, num_layers=0),
}


def blobs(n=300, classes=3, features=6, seed=0):
    """Gaussian blobs around random centres: a run of a few milliseconds."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.standard_normal((classes, features)) * 3
    x = (centres[y] + rng.standard_normal((n, features))).astype(np.float32)
    cut = int(0.8 * n)
    return data.Splits(x[:cut], y[:cut], x[cut:], y[cut:], x[:40], y[:40])


@functools.cache
def saved_states(shape: str) -> tuple[str, ...]:
    """The state.json text of every epoch of a real run, as ``fnn train --save`` writes it
    (format 3; the last one finished, with the test scores)."""
    config = TrainConfig(**{**SMALL, **SHAPES[shape]})
    texts = []

    def keep(model, training, arrays):
        state = {
            "format": 3, "run_id": "5f0c9a", "wandb_run_id": None,
            "fnn_version": fnn.__version__, "config": config.to_dict(), "finished": False,
            "training": training,
            "data": {"sha256": hashlib.sha256(b"blobs").hexdigest(), "examples": [240, 60, 40]},
        }  # fmt: skip
        texts.append(json.dumps(state))

    fit(config, blobs(), on_checkpoint=keep)
    last = json.loads(texts[-1])
    last["finished"], last["training"]["history"]["test"] = True, {"loss": 1.5, "accuracy": 0.5}
    return (*texts[:-1], json.dumps(last))


def valid(shape: str = "eve") -> dict:
    """A fresh copy of the finished run's state."""
    return json.loads(saved_states(shape)[-1])


@pytest.mark.parametrize("shape", SHAPES)
def test_every_state_fit_writes_passes_unchanged(shape):
    for text in saved_states(shape):
        state = json.loads(text)
        assert check_state(state, NAME) == state
        assert state == json.loads(text)  # not written
        assert check_config(state["config"], "run/config.json") == state["config"]
    assert valid("sgd")["training"]["history"]["stopped_early"]  # the shapes are what they say
    assert valid("sgd")["training"]["dropout_rng"] is None


def test_format_2_has_no_data_record():
    state = valid()
    state["format"] = 2
    del state["data"]
    assert check_state(state, NAME) == state
    state["format"] = 3
    with pytest.raises(SavedStateError, match=r"^run/state.json: data is missing$"):
        check_state(state, NAME)


def _set(path: str, value):
    """An edit of a state: the key at the dotted ``path`` set to ``value`` (deleted for DELETE)."""

    def edit(state):
        *parents, last = path.split(".")
        for key in parents:
            state = state[key]
        if value is DELETE:
            del state[last]
        else:
            state[last] = value

    return edit


DELETE = object()
MT19937 = np.random.MT19937(0).state
MT19937["state"]["key"] = MT19937["state"]["key"].tolist()
EDITS = [
    ("training.epoch", "1", "training.epoch must be an integer; got '1'"),
    (
        "config.extra.tracker",
        "bogus",
        "config.extra.tracker must be one of wandb, none; got 'bogus'",
    ),
    (
        "config.extra.wandb_project",
        {"a": 1},
        "config.extra.wandb_project must be a non-empty string; got {'a': 1}",
    ),
    ("training", DELETE, "training is missing"),
    ("training.global_step", "x", "training.global_step must be an integer; got 'x'"),
    (
        "training.batch_rng",
        MT19937,
        "training.batch_rng.bit_generator must be PCG64 (the generator fnn saves); got 'MT19937'",
    ),  # fmt: skip
    ("training.epoch", -5, "training.epoch must be >= 0; got -5"),
    ("training.epoch", 3, "training.epoch must be <= config.epochs = 2; got 3"),
    ("training.epoch", 1.0, "training.epoch must be an integer; got 1.0"),
    ("training.global_step", True, "training.global_step must be an integer; got True"),
    ("config.learning_rate", "0.01", "config.learning_rate must be a number; got '0.01'"),
    ("config.learning_rate", True, "config.learning_rate must be a number; got True"),
    (
        "config.hidden_sizes",
        "8",
        "config.hidden_sizes must be positive widths such as 512,256; got '8'",
    ),  # fmt: skip
    (
        "config.hidden_sizes",
        [],
        "config.hidden_sizes must be positive widths such as 512,256; got []",
    ),  # fmt: skip
    ("config.epochs", -5, "config.epochs must be >= 1; got -5"),
    ("config.epochs", True, "config.epochs must be an integer; got True"),
    (
        "config.optimizer",
        "lion",
        "config.optimizer must be one of sgd, momentum, nag, rmsprop, adam, nadam, eve; got 'lion'",
    ),  # fmt: skip
    ("config.resize", 5, "config.resize must divide fashion_mnist's image side 28; got 5"),
    ("config.hparams.K", 0.05, "config.hparams.K must be > k = 0.1; got 0.05"),
    (
        "config.hparams.gamma",
        1,
        "config.hparams.gamma is not an optimizer hyperparameter kept "
        "in hparams (known: beta3, k, K)",
    ),  # fmt: skip
    (
        "config.classes",
        ["cat"],
        "config.classes unknown class 'cat' of fashion_mnist; valid: "
        "T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot",
    ),
    ("config.colour", "red", "config.colour is not a key fnn writes"),
    ("config", DELETE, "config is missing"),
    ("config", [], "config must be a JSON object; got []"),
    ("format", 99, "format 99, this fnn resumes format 2, 3 or 4"),
    ("format", "3", "format must be an integer; got '3'"),
    ("format", DELETE, "format is missing"),
    ("run_id", "", "run_id must be a non-empty string; got ''"),
    ("wandb_run_id", 7, "wandb_run_id must be a string or null; got 7"),
    ("finished", 1, "finished must be true or false; got 1"),
    ("comment", "hi", "comment is not a key fnn writes"),
    ("data.sha256", "ABC", "data.sha256 must be a sha256 of 64 lower-case hex digits; got 'ABC'"),
    (
        "data.sha256",
        "A" * 64,
        "data.sha256 must be a sha256 of 64 lower-case hex digits; got "
        "'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...",
    ),  # fmt: skip
    (
        "data.examples",
        [1, 2],
        "data.examples must be a list of 3 counts [train, validation, test]; got [1, 2]",
    ),  # fmt: skip
    ("training.history", "x", "training.history must be a JSON object; got 'x'"),
    (
        "training.history.epochs",
        [],
        "training.history.epochs must hold one record per epoch done (training.epoch = 2); got 0",
    ),  # fmt: skip
    ("training.history.best_epoch", 3, "training.history.best_epoch must be in [1, 2]; got 3"),
    ("training.history.steps", {}, "training.history.steps must be a list; got {}"),
    (
        "training.history.test.accuracy",
        2,
        "training.history.test.accuracy must be in [0, 1]; got 2",
    ),  # fmt: skip
    ("training.loss_sum", float("nan"), "training.loss_sum must be a finite number; got nan"),
    ("training.best_loss", "1", "training.best_loss must be a number; got '1'"),
    (
        "training.optimizer_scalars.count",
        None,
        "training.optimizer_scalars.count must be a number; got None",
    ),  # fmt: skip
    (
        "training.optimizer_scalars.odd key",
        "x",
        "training.optimizer_scalars['odd key'] must be a number; got 'x'",
    ),  # fmt: skip
    (
        "training.dropout_rng",
        None,
        "training.dropout_rng must be a PCG64 state, as config.dropout is 0.2; got None",
    ),  # fmt: skip
    ("training.batch_rng.state.inc", 2, "training.batch_rng.state.inc must be odd; got 2"),
    (
        "training.batch_rng.state.state",
        2**128,
        "training.batch_rng.state.state must be < "
        "2**128; got 340282366920938463463374607431768211456",
    ),  # fmt: skip
    ("training.batch_rng.has_uint32", 2, "training.batch_rng.has_uint32 must be in [0, 1]; got 2"),
    ("training.batch_rng.uinteger", -1, "training.batch_rng.uinteger must be >= 0; got -1"),
    ("training.batch_rng.seed", 1, "training.batch_rng.seed is not a key fnn writes"),
]


@pytest.mark.parametrize(("path", "value", "message"), EDITS, ids=[e[0] for e in EDITS])
def test_each_hand_edit_is_one_line_naming_the_file_and_the_key(path, value, message):
    state = valid()
    _set(path, value)(state)
    with pytest.raises(SavedStateError) as caught:
        check_state(state, NAME)
    assert str(caught.value) == f"{NAME}: {message}"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s["training"]["history"]["epochs"][1].update(epoch=5),
            "training.history.epochs[1].epoch must be 2; got 5",
        ),
        (
            lambda s: s["training"]["history"]["epochs"][0].update(val_loss=float("inf")),
            "training.history.epochs[0].val_loss must be a finite number; got inf",
        ),
        (
            lambda s: s["training"]["history"]["epochs"][0].pop("seconds"),
            "training.history.epochs[0].seconds is missing",
        ),
        (
            lambda s: s["training"]["history"]["steps"][0].update(step=0),
            "training.history.steps[0].step must be >= 1; got 0",
        ),
        (
            lambda s: s["training"].update(batch_rng=s["training"]["batch_rng"]["state"]),
            "training.batch_rng.bit_generator is missing",
        ),
    ],  # fmt: skip
)
def test_records_in_lists_are_named_by_index(edit, message):
    state = valid()
    edit(state)
    with pytest.raises(SavedStateError) as caught:
        check_state(state, NAME)
    assert str(caught.value) == f"{NAME}: {message}"


def test_only_the_losses_fit_does_not_check_may_be_nan():
    state = valid()
    state["training"]["history"]["epochs"][0]["train_loss"] = float("nan")
    state["training"]["history"]["test"]["loss"] = float("inf")
    assert check_state(state, NAME)["training"] is state["training"]


def test_dropout_rng_is_null_exactly_when_dropout_is_zero():
    state = valid("nag")
    state["training"]["dropout_rng"] = valid()["training"]["batch_rng"]
    with pytest.raises(SavedStateError, match=r"dropout_rng must be null, as config.dropout is 0"):
        check_state(state, NAME)


def test_a_network_without_hidden_layers_keeps_its_empty_widths():
    config = valid("nag")["config"]
    assert config["num_layers"] == 0 and config["hidden_sizes"] == []
    assert check_config(config, "c.json")["hidden_sizes"] == []


def test_config_json_is_checked_with_its_keys_at_the_top():
    config = valid()["config"]
    config["learning_rate"] = "0.01"
    with pytest.raises(SavedStateError) as caught:
        check_config(config, "run/config.json")
    assert str(caught.value) == "run/config.json: learning_rate must be a number; got '0.01'"
    with pytest.raises(SavedStateError) as caught:
        check_config(["x"], "run/config.json")
    assert str(caught.value) == "run/config.json: must be a JSON object; got ['x']"
    config = valid()["config"]
    del config["learning_rate"]
    with pytest.raises(SavedStateError, match=r"^run/config.json: learning_rate is missing$"):
        check_config(config, "run/config.json")


def test_optimizer_hyperparameters_are_checked_against_their_declared_range():
    config = valid()["config"]  # eve's beta2 in [0, 1)
    config.update(beta2=1.0)
    with pytest.raises(SavedStateError, match=r"config.beta2 must be in \[0, 1\); got 1.0$"):
        check_config(config, "c.json", "config.")


def test_read_json_refuses_deep_nesting_before_parsing(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("[" * 100_000)
    with pytest.raises(SavedStateError) as caught:
        read_json(path, NAME)
    assert str(caught.value) == f"{NAME}: nested deeper than 100 levels"
    path.write_text("[" * 100 + "]" * 100)
    assert read_json(path) == json.loads("[" * 100 + "]" * 100)
    path.write_text("{" * 101)
    with pytest.raises(SavedStateError, match=r"nested deeper than 100 levels$"):
        read_json(path)
    with pytest.raises(SavedStateError, match=r"nested deeper than 5 levels$"):
        read_json(path, max_depth=5)


def test_brackets_in_strings_do_not_count(tmp_path):
    path = tmp_path / "state.json"
    value = ["[" * 500, "\\", {'\\"[[': "]]]" * 99}, '"{' * 300, [["\\\\"]]]
    path.write_text(json.dumps(value))
    assert read_json(path) == value


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"a": 1,}',
            "not valid JSON (line 1, column 9: Expecting property name enclosed in double quotes)",
        ),
        (b'{"a":\n 1 2}', "not valid JSON (line 2, column 4: Expecting ',' delimiter)"),
        (b"", "not valid JSON (line 1, column 1: Expecting value)"),
        (b'{"a": "\xff"}', "not UTF-8 text"),
        (
            b"1" * 5000,
            "not valid JSON (Exceeds the limit (4300 digits) for integer string "
            "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to "
            "increase the limit)",
        ),
    ],  # fmt: skip
)
def test_read_json_names_the_file_in_one_line(tmp_path, content, message):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(SavedStateError) as caught:
        read_json(path, NAME)
    assert str(caught.value) == f"{NAME}: {message}"


def test_read_json_says_why_a_file_cannot_be_read(tmp_path):
    with pytest.raises(SavedStateError) as caught:
        read_json(tmp_path / "absent.json")
    assert str(caught.value) == f"{tmp_path / 'absent.json'}: cannot read it (No such file or " \
                                "directory)"  # fmt: skip
    with pytest.raises(SavedStateError, match=r": cannot read it \(Is a directory\)$"):
        read_json(tmp_path, "dir")


def test_long_values_are_cut_in_messages():
    state = valid()
    state["training"]["history"] = list(range(10_000))
    with pytest.raises(SavedStateError) as caught:
        check_state(state, NAME)
    assert str(caught.value) == (
        f"{NAME}: training.history must be a JSON object; got "
        "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16..."
    )


def test_a_state_fnn_train_saves_passes(tmp_path, data_dir):
    result = subprocess.run(
        [sys.executable, "-m", "fnn", "train", "--epochs", "2", "--train_subset", "100",
         "--hidden_size", "8", "--num_layers", "1", "--optimizer", "eve", "--patience", "1",
         "--tracker", "none", "--quiet", "--data_dir", str(data_dir), "--save", "run"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    state = read_json(tmp_path / "run" / "state.json")
    assert check_state(state, "run/state.json") == state
    config = read_json(tmp_path / "run" / "config.json")
    assert check_config(config, "run/config.json") == config == state["config"]


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=8)
    | st.integers(min_value=-(2**130), max_value=2**130)
    | st.sampled_from([0, 1, 2, 3, -1, 2**32, 2**128 - 1, "PCG64", "eve", "sgd", "", "x"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(STATE_KEYS), children, max_size=4),
    max_leaves=16,
)  # fmt: skip


def _paths(value, path=()):
    """Every key and index of ``value``, as tuples from the top."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        yield (*path, key)
        if isinstance(inner, dict | list):
            yield from _paths(inner, (*path, key))


def _one_line_or_accepted(state) -> None:
    try:
        result = check_state(state, NAME)
    except SavedStateError as error:
        text = str(error)
        assert text.startswith(f"{NAME}: ") and "\n" not in text and len(text) < 400
    else:
        assert isinstance(result, dict)


@settings(max_examples=200, deadline=None)
@given(st.one_of(JSON, st.fixed_dictionaries({key: JSON for key in STATE_KEYS})))
def test_any_json_value_is_accepted_or_refused_in_one_line(value):
    _one_line_or_accepted(value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SHAPES)), st.data())
def test_any_key_of_a_valid_state_replaced_by_any_json_value(shape, draw):
    state = valid(shape)
    path = draw.draw(st.sampled_from(list(_paths(state))))
    value = draw.draw(st.one_of(JSON, st.just(DELETE)))
    parent = state
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)
    _one_line_or_accepted(state)
