"""The package's shape: the core imports only NumPy and einops, and a new optimizer is one
factory plus one registry line that the command line, its help and sweeps pick up."""

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fnn"
CORE = ("activations", "constraints", "gradcheck", "init", "losses", "metrics", "tree_io",
        "tree_math", "model", "optimizers", "registry", "tree", "fused", "passes", "rules",
        "__init__")  # fmt: skip
# numba, optional, is imported by the first fused update, inside fnn.fused's functions only
LAZY = {"fused": {"numba"}}
APPLICATION_DEPENDENCIES = ("wandb", "optuna", "matplotlib", "typer", "rich", "pooch", "yaml")


def run_python(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=600, cwd=cwd,
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"},
    )  # fmt: skip


def test_importing_the_core_loads_no_application_dependency():
    result = run_python(
        """
        import sys
        import fnn, fnn.optimizers, fnn.model, fnn.tree, fnn.constraints, fnn.gradcheck
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1:])))
        """,
        *APPLICATION_DEPENDENCIES,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("module", CORE)
def test_core_modules_import_only_numpy_einops_the_standard_library_and_the_core(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    lazy = {id(node) for function in ast.walk(tree) if isinstance(function, ast.FunctionDef)
            for node in ast.walk(function)}  # fmt: skip
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            if node.module == "fnn":
                names = [f"fnn.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if id(node) in lazy and top in LAZY.get(module, ()):
                continue
            if top == "fnn":
                assert name.split(".")[1] in CORE, f"{module} imports {name}"
            else:
                assert top in ("numpy", "einops", "__future__") or top in sys.stdlib_module_names, (
                    f"{module} imports {name}"
                )


TOY = """
import numpy as np

from fnn import optimizers
from fnn.constraints import NON_NEGATIVE, POSITIVE, Interval
from fnn.optimizers import Rule, SGDState, constrained, lift


def toy_elements(g, negative_step):
    return (g * negative_step,)


@constrained(learning_rate=POSITIVE, gamma=Interval(float, 0, 1, closed="right"),
             weight_decay=NON_NEGATIVE)
def toy(learning_rate, gamma=0.5, weight_decay=0.0):
    \"\"\"Gradient descent at gamma times the learning rate: update = -lr gamma g.\"\"\"
    return lift(SGDState, Rule(toy_elements, None, (-learning_rate * gamma,)), weight_decay)


optimizers.OPTIMIZERS["toy"] = toy
"""


@pytest.fixture
def toy_cli(tmp_path):
    """A script that registers the toy optimizer, then runs ``fnn ARGS``."""
    script = tmp_path / "with_toy.py"
    script.write_text(
        TOY + "\nimport sys\nfrom fnn.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )

    def fnn(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, text=True, timeout=600,
            cwd=tmp_path, env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
                               "COLUMNS": "200"},
        )  # fmt: skip

    return fnn


def test_a_new_optimizer_brings_its_options_and_ranges_into_help(toy_cli):
    result = toy_cli("train", "--help")
    assert result.returncode == 0, result.stderr
    assert "toy" in result.stdout
    assert "--gamma" in result.stdout and "toy: in (0, 1]" in result.stdout
    bad = toy_cli("train", "--optimizer", "toy", "--gamma", "2", "--tracker", "none")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "fnn: --gamma must be in (0, 1]; got 2.0"


def test_a_new_optimizer_trains_and_sweeps_with_no_other_change(toy_cli, tmp_path, data_dir):
    common = ("--data_dir", str(data_dir), "--train_subset", "200", "--tracker", "none")
    result = toy_cli("train", "--optimizer", "toy", "--gamma", "0.5", "--epochs", "1",
                     "--hidden_size", "16", "--quiet", *common)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    (tmp_path / "toy.yaml").write_text(
        "method: grid\nmetric: {name: val_accuracy, goal: maximize}\nparameters:\n"
        "  optimizer: {value: toy}\n  gamma: {values: [0.25, 1.0]}\n  epochs: {value: 1}\n"
        "  hidden_size: {value: 16}\n"
    )
    sweep = toy_cli("sweep", "toy.yaml", "--backend", "local", "--storage",
                    f"sqlite:///{tmp_path / 'toy.db'}", *common)  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    assert "2 complete of 2 trials" in sweep.stdout
    out_of_range = tmp_path / "bad.yaml"
    out_of_range.write_text("method: grid\nmetric: {name: val_loss}\nparameters:\n"
                            "  optimizer: {value: toy}\n  gamma: {values: [0.5, 3]}\n")  # fmt: skip
    bad = toy_cli("sweep", "bad.yaml", "--backend", "local", *common)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "fnn: parameter gamma: value 3 is invalid; gamma must be in (0, 1]"
    )


def _without_docstrings(nodes: list[ast.stmt]) -> str:
    for node in nodes:
        for inner in ast.walk(node):
            body = getattr(inner, "body", None)
            if (
                isinstance(inner, ast.FunctionDef | ast.ClassDef)
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
            ):
                inner.body = body[1:] or [ast.Pass()]
    return "\n".join(ast.dump(node) for node in nodes)


def test_the_readme_optimizer_examples_are_the_code():
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme[readme.index("### Adding an optimizer") :]
    blocks, start = [], 0
    while "```python\n" in section[start:]:
        start = section.index("```python\n", start) + 10
        blocks.append(section[start : section.index("\n```", start)])
    source = (PACKAGE / "optimizers.py").read_text()
    pieces = [(blocks[0], "rules.py", ("momentum_elements", "momentum_loop")),
              (blocks[1], "optimizers.py", ("MomentumState", "momentum"))]  # fmt: skip
    for block, file, names in pieces:
        module = ast.parse((PACKAGE / file).read_text()).body
        code = [node for node in module if getattr(node, "name", None) in names]
        assert _without_docstrings(ast.parse(block).body) == _without_docstrings(code)
    assert blocks[2] in source  # Eve's last lines, as they are
    assert blocks[3] == 'OPTIMIZERS = {..., "eve": eve}'
    assert '    "eve": eve,' in source


def test_a_missing_optional_dependency_is_one_line_naming_the_extra(tmp_path):
    # optuna made unimportable: the local sweep backend needs it
    result = run_python(
        """
        import sys
        sys.modules["optuna"] = None
        from fnn.cli import main
        sys.exit(main(["sweep-report", "nothing", "--storage", "sqlite:///x.db"]))
        """,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "fnn: this needs optuna, which is missing: pip install 'fnn[cli]'"
    )


def test_the_readme_api_table_lists_every_public_function():
    import fnn

    readme = (PACKAGE.parent / "README.md").read_text()
    table = readme[readme.index("## API") : readme.index("**Pure by contract.**")]
    modules = {"activations", "init", "losses", "metrics", "optimizers", "tree", "tree_io",
               "tree_math"}  # fmt: skip
    for name in set(fnn.__all__) - modules:
        assert f"`fnn.{name}" in table, name
