"""Strict checks of what ``fnn train --save`` writes and ``--resume`` reads back (state.json,
config.json): a hand edit or a damaged file becomes one line naming the file and the key, never
a traceback and never a value silently accepted."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from fnn.constraints import Constraint, ConstraintError, Interval, Widths, is_integer, is_number
from fnn.tracking import TRACKERS
from fnn.train.config import (
    FIELDS,
    OPTIMIZER_FIELDS,
    ConfigError,
    TrainConfig,
    constraint,
    hyperparameter_constraint,
    hyperparameter_names,
    validate,
)


class SavedStateError(ValueError):
    """One line: '<file>: <key path> <problem>'."""


STATE_KEYS = ("format", "run_id", "wandb_run_id", "fnn_version", "config", "finished", "training")
TRAINING_KEYS = ("epoch", "global_step", "loss_sum", "loss_count", "stale", "best_loss", "history",
                 "optimizer", "optimizer_scalars", "batch_rng", "dropout_rng")  # fmt: skip
HISTORY_KEYS = ("epochs", "steps", "best_epoch", "stopped_early")
RNG_KEYS = ("bit_generator", "state", "has_uint32", "uinteger")

COUNT = Interval(int, 0, None)
FINITE = Interval(float, None, None)
FRACTION = Interval(float, 0, 1)
# The records fit writes (None: any number, NaN and infinities included). Only losses of
# parameters fit did not check may be non-finite: the training set's at the end of an epoch and
# the test set's; a non-finite validation loss or minibatch loss stops fit before any save.
EPOCH_RECORD = {"epoch": COUNT, "step": COUNT, "train_loss": None, "train_accuracy": FRACTION,
                "val_loss": FINITE, "val_accuracy": FRACTION,
                "seconds": Interval(float, 0, None)}  # fmt: skip
STEP_RECORD = {"step": Interval(int, 1, None), "running_train_loss": FINITE}
TEST_RECORD = {"loss": None, "accuracy": FRACTION}

_SHOWN = 60  # longest repr of a value in a message
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NOT_STRUCTURE = bytes(code for code in range(256) if code not in b'"[]{}')
# +1 for an opening bracket, -1 (0xff as int8) for a closing one, 0 for anything else
_DEPTH_STEP = bytes(1 if code in b"[{" else 0xFF if code in b"]}" else 0 for code in range(256))


def read_json(path: Path, name: str | None = None, *, max_depth: int = 100) -> Any:
    """The JSON value in the UTF-8 file ``path``; ``SavedStateError`` prefixed with ``name``
    (default: the path) when it cannot be read, is not UTF-8 JSON, or nests deeper than
    ``max_depth`` levels of brackets (checked before parsing, which would overflow the stack)."""
    name = str(path) if name is None else name
    try:
        raw = Path(path).read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SavedStateError(f"{name}: not UTF-8 text") from None
    except OSError as error:
        raise SavedStateError(f"{name}: cannot read it ({error.strerror or error})") from None
    if _depth(raw) > max_depth:
        raise SavedStateError(f"{name}: nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise SavedStateError(f"{name}: not valid JSON ({where}: {error.msg})") from None
    except (ValueError, RecursionError) as error:  # e.g. an integer of over 4300 digits
        raise SavedStateError(f"{name}: not valid JSON ({_first_line(error)})") from None


def _depth(raw: bytes) -> int:
    """The deepest nesting of [ ] and { } outside JSON strings, in a few passes of C code over
    the bytes: escaped backslashes and quotes removed, every other quote opens or closes a
    string, and the running sum of +1 per opening and -1 per closing bracket outside them."""
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = unescaped.translate(None, _NOT_STRUCTURE)  # only " [ ] { } left
    quotes = np.frombuffer(skeleton, np.uint8) == ord('"')
    in_string = (np.cumsum(quotes, dtype=np.uint8) & 1).view(bool)  # parity survives wrapping
    steps = np.frombuffer(skeleton.translate(_DEPTH_STEP), np.int8)
    steps = np.where(in_string, np.int8(0), steps)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def check_config(config: Any, name: str, prefix: str = "") -> dict:
    """``config`` as ``TrainConfig.to_dict()`` writes it: every setting and no other, each of
    the JSON type fnn writes and within the range of the constraints table (the optimizer's
    declaration for its hyperparameters), then ``validate``'s rules between settings. Returns
    the config made canonical; ``SavedStateError`` names ``name`` and ``prefix`` + the key."""
    fields = [field.name for field in dataclasses.fields(TrainConfig)]
    _keys(config, name, prefix.rstrip("."), fields)
    values: dict[str, Any] = {}
    for key in fields:  # in the dataclass's order: the optimizer before its hyperparameters
        rule, value = constraint(key, values.get("optimizer")), config[key]
        if key == "hidden_sizes" and value == [] and values["num_layers"] == 0:
            values[key] = None  # to_dict's widths of a network without hidden layers
        elif rule is not None:
            values[key] = _setting(rule, value, name, prefix + key)
    values["data_dir"] = _text(config["data_dir"], name, f"{prefix}data_dir", optional=True)
    classes = config["classes"]
    if classes is not None and not (
        isinstance(classes, list) and all(isinstance(item, str) for item in classes)
    ):
        problem = f"must be null or a list of class names; got {_show(classes)}"
        raise _error(name, f"{prefix}classes", problem)
    values["classes"] = None if classes is None else tuple(classes)
    values["hparams"] = _hparams(config["hparams"], values["optimizer"], name, f"{prefix}hparams")
    values["extra"] = _extra(config["extra"], name, f"{prefix}extra")
    try:
        checked = validate(TrainConfig(**values))
    except ConfigError as error:  # a rule between settings: eve's K > k, classes, resize
        key = error.option if error.option in FIELDS else f"hparams.{error.option}"
        problem = str(error).removeprefix(f"--{error.option} ")
        raise _error(name, prefix + key, problem) from None
    return checked.to_dict()


def _extra(extra: Any, name: str, path: str) -> dict:
    """``extra``: a free mapping, but for the tracking settings a resumed run reuses."""
    _mapping(extra, name, path)
    if "tracker" in extra and extra["tracker"] not in TRACKERS:
        raise _error(name, f"{path}.tracker", f"must be one of {', '.join(TRACKERS)}; "
                     f"got {_show(extra['tracker'])}")  # fmt: skip
    for key, optional in (("wandb_project", False), ("wandb_entity", True)):
        if key in extra:
            _text(extra[key], name, f"{path}.{key}", optional=optional, empty=False)
    return extra


def _hparams(hparams: Any, optimizer: str, name: str, path: str) -> dict[str, float]:
    """``hparams``: hyperparameters not kept in fields of their own (eve's beta3, k, K), each
    a number in the range ``optimizer`` (or the first optimizer taking it) declares."""
    _mapping(hparams, name, path)
    known = [hparam for hparam in hyperparameter_names() if hparam not in OPTIMIZER_FIELDS]
    checked = {}
    for key, value in hparams.items():
        if key not in known:
            raise _error(name, _at(path, key), f"is not an optimizer hyperparameter kept in "
                         f"hparams (known: {', '.join(known)})")  # fmt: skip
        rule = hyperparameter_constraint(key, optimizer)
        checked[key] = _setting(rule, value, name, _at(path, key))
    return checked


def check_state(state: Any, name: str, formats: tuple[int, ...] = (2, 3, 4)) -> dict:
    """The whole of a state.json: its ``format`` one of ``formats``, exactly the keys fnn
    writes (with ``data`` from format 3), the run's ids and version, its config (as
    ``check_config``), the data it trained on, and the training state ``fit`` resumes from.
    Returns the state with its config made canonical; ``SavedStateError`` otherwise."""
    _mapping(state, name, "")
    version = _format(state, name, formats)
    required = STATE_KEYS + (("data",) if version >= 3 else ())
    _keys(state, name, "", required, optional=("data",))
    _text(state["run_id"], name, "run_id", empty=False)
    _text(state["wandb_run_id"], name, "wandb_run_id", optional=True)
    _text(state["fnn_version"], name, "fnn_version")
    config = check_config(state["config"], name, "config.")
    _boolean(state["finished"], name, "finished")
    if "data" in state:
        _data(state["data"], name, "data")
    _training(state["training"], config, name, "training")
    return {**state, "config": config}


def _format(state: dict, name: str, formats: tuple[int, ...]) -> int:
    """The state's format number, one this fnn resumes."""
    if "format" not in state:
        raise _error(name, "format", "is missing")
    version = state["format"]
    if not is_integer(version):
        raise _error(name, "format", f"must be an integer; got {_show(version)}")
    if version not in formats:
        known = [str(number) for number in formats]
        either = " or ".join([", ".join(known[:-1]), known[-1]] if len(known) > 1 else known)
        raise SavedStateError(f"{name}: format {_show(version)}, this fnn resumes format {either}")
    return version


def _data(data: Any, name: str, path: str) -> None:
    """The data set's fingerprint: a sha256 and the train, validation and test sizes."""
    _keys(data, name, path, ("sha256", "examples"))
    digest = data["sha256"]
    if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
        problem = f"must be a sha256 of 64 lower-case hex digits; got {_show(digest)}"
        raise _error(name, f"{path}.sha256", problem)
    examples = data["examples"]
    if not (isinstance(examples, list) and len(examples) == 3):
        raise _error(name, f"{path}.examples", "must be a list of 3 counts [train, validation, "
                     f"test]; got {_show(examples)}")  # fmt: skip
    for index, count in enumerate(examples):
        _setting(COUNT, count, name, f"{path}.examples[{index}]")


def _training(training: Any, config: dict, name: str, path: str) -> None:
    """What ``snapshot`` writes: counters, the history, the optimizer's scalars and the states
    of the batch-order and dropout generators (the latter null exactly when dropout is 0)."""
    _keys(training, name, path, TRAINING_KEYS)
    epoch = _setting(COUNT, training["epoch"], name, f"{path}.epoch")
    if epoch > config["epochs"]:
        raise _error(name, f"{path}.epoch", f"must be <= config.epochs = {config['epochs']}; "
                     f"got {epoch}")  # fmt: skip
    for key in ("global_step", "loss_count", "stale"):
        _setting(COUNT, training[key], name, f"{path}.{key}")
    _setting(FINITE, training["loss_sum"], name, f"{path}.loss_sum")
    if training["best_loss"] is not None:
        _setting(FINITE, training["best_loss"], name, f"{path}.best_loss")
    _history(training["history"], epoch, name, f"{path}.history")
    _text(training["optimizer"], name, f"{path}.optimizer", empty=False)
    scalars = _mapping(training["optimizer_scalars"], name, f"{path}.optimizer_scalars")
    for key, value in scalars.items():
        _setting(FINITE, value, name, _at(f"{path}.optimizer_scalars", key))
    _generator(training["batch_rng"], name, f"{path}.batch_rng")
    dropout_rng = training["dropout_rng"]
    if config["dropout"] == 0 and dropout_rng is not None:
        raise _error(name, f"{path}.dropout_rng", f"must be null, as config.dropout is 0; got "
                     f"{_show(dropout_rng)}")  # fmt: skip
    if config["dropout"] != 0 and dropout_rng is None:
        raise _error(name, f"{path}.dropout_rng", f"must be a PCG64 state, as config.dropout "
                     f"is {config['dropout']}; got None")  # fmt: skip
    if dropout_rng is not None:
        _generator(dropout_rng, name, f"{path}.dropout_rng")


def _history(history: Any, epoch: int, name: str, path: str) -> None:
    """fit's history: one record per epoch done (numbered from 1), the running losses, the
    best epoch, whether training stopped early, and the test scores once the run ended."""
    _keys(history, name, path, HISTORY_KEYS, optional=("test",))
    records = _sequence(history["epochs"], name, f"{path}.epochs")
    if len(records) != epoch:
        raise _error(name, f"{path}.epochs", f"must hold one record per epoch done (training."
                     f"epoch = {epoch}); got {len(records)}")  # fmt: skip
    for index, record in enumerate(records):
        where = f"{path}.epochs[{index}]"
        _record(record, EPOCH_RECORD, name, where)
        if record["epoch"] != index + 1:
            raise _error(
                name, f"{where}.epoch", f"must be {index + 1}; got {_show(record['epoch'])}"
            )
    for index, record in enumerate(_sequence(history["steps"], name, f"{path}.steps")):
        _record(record, STEP_RECORD, name, f"{path}.steps[{index}]")
    best = history["best_epoch"]
    if best is not None and epoch == 0:
        problem = f"must be null before the first epoch ends; got {_show(best)}"
        raise _error(name, f"{path}.best_epoch", problem)
    if best is not None:
        _setting(Interval(int, 1, epoch), best, name, f"{path}.best_epoch")
    _boolean(history["stopped_early"], name, f"{path}.stopped_early")
    if "test" in history:
        _record(history["test"], TEST_RECORD, name, f"{path}.test")


def _record(record: Any, rules: dict[str, Constraint | None], name: str, path: str) -> None:
    """An object with exactly the keys of ``rules``, each value a number that fits its rule."""
    _keys(record, name, path, tuple(rules))
    for key, rule in rules.items():
        if rule is None and not is_number(record[key]):
            raise _error(name, f"{path}.{key}", f"must be a number; got {_show(record[key])}")
        if rule is not None:
            _setting(rule, record[key], name, f"{path}.{key}")


def _generator(state: Any, name: str, path: str) -> None:
    """A PCG64 state as ``bit_generator.state`` gives it, which NumPy accepts back."""
    _mapping(state, name, path)
    if "bit_generator" not in state:
        raise _error(name, f"{path}.bit_generator", "is missing")
    if state["bit_generator"] != "PCG64":
        raise _error(name, f"{path}.bit_generator", "must be PCG64 (the generator fnn saves); "
                     f"got {_show(state['bit_generator'])}")  # fmt: skip
    _keys(state, name, path, RNG_KEYS)
    inner = _keys(state["state"], name, f"{path}.state", ("state", "inc"))
    for key, value, bits in (("state.state", inner["state"], 128),
                             ("state.inc", inner["inc"], 128),
                             ("uinteger", state["uinteger"], 32)):  # fmt: skip
        if _setting(COUNT, value, name, f"{path}.{key}") >= 2**bits:
            raise _error(name, f"{path}.{key}", f"must be < 2**{bits}; got {_show(value)}")
    if inner["inc"] % 2 == 0:  # PCG64's increment is odd by construction
        raise _error(name, f"{path}.state.inc", f"must be odd; got {_show(inner['inc'])}")
    _setting(Interval(int, 0, 1), state["has_uint32"], name, f"{path}.has_uint32")
    try:
        np.random.PCG64(0).state = state
    except Exception as error:  # whatever NumPy refuses, said in one line
        problem = f"is not a PCG64 state NumPy accepts ({_first_line(error)})"
        raise _error(name, path, problem) from None


def _setting(rule: Constraint, value: Any, name: str, path: str) -> Any:
    """``value`` checked by ``rule`` as JSON gives it (a number for a number, a list for
    widths: no text read as one), in the rule's canonical type."""
    if isinstance(rule, Widths) and not isinstance(value, list):
        raise _error(name, path, f"must be {rule.describe()}; got {_show(value)}")
    if getattr(rule, "kind", None) is float and isinstance(value, str):
        raise _error(name, path, f"must be a number; got {_show(value)}")
    try:
        return rule.check(path, value)
    except ConstraintError as error:
        problem = error.message.rsplit("; got ", 1)[0]
        raise _error(name, path, f"{problem}; got {_show(value)}") from None
    except (OverflowError, ValueError):  # an integer too large for a float or for repr
        raise _error(name, path, f"is too large; got {_show(value)}") from None


def _keys(value: Any, name: str, path: str, required, optional=()) -> dict:
    """``value``, an object holding every key of ``required`` and no key but those and
    ``optional``."""
    _mapping(value, name, path)
    for key in required:
        if key not in value:
            raise _error(name, _at(path, key), "is missing")
    for key in value:
        if key not in required and key not in optional:
            raise _error(name, _at(path, key), "is not a key fnn writes")
    return value


def _mapping(value: Any, name: str, path: str) -> dict:
    if not isinstance(value, dict):
        raise _error(name, path, f"must be a JSON object; got {_show(value)}")
    return value


def _sequence(value: Any, name: str, path: str) -> list:
    if not isinstance(value, list):
        raise _error(name, path, f"must be a list; got {_show(value)}")
    return value


def _text(value: Any, name: str, path: str, *, optional=False, empty=True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not (empty or value):
        kind = ("a string" if empty else "a non-empty string") + (" or null" if optional else "")
        raise _error(name, path, f"must be {kind}; got {_show(value)}")
    return value


def _boolean(value: Any, name: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise _error(name, path, f"must be true or false; got {_show(value)}")
    return value


def _at(path: str, key: Any) -> str:
    """The path of ``key`` in the object at ``path``: ``a.b``, or ``a['odd key']``."""
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_show(key)}]"


def _show(value: Any) -> str:
    """``repr(value)``, cut to ``_SHOWN`` characters."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of over 4300 digits, a deep nest
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text.strip() else type(error).__name__


def _error(name: str, path: str, problem: str) -> SavedStateError:
    message = f"{name}: {path} {problem}" if path else f"{name}: {problem}"
    return SavedStateError(message.replace("\n", " "))
