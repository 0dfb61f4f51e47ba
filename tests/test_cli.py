import re

from typer.testing import CliRunner

from fnn.cli import app

runner = CliRunner()


def test_gradcheck_prints_a_table_with_small_errors():
    result = runner.invoke(app, ["gradcheck", "--sizes", "6,5,4", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    for name in ("identity", "sigmoid", "tanh", "relu", "cross_entropy", "mean_squared_error"):
        assert name in result.output
    worst = float(re.search(r"worst: (\S+)", result.output).group(1))
    assert worst < 1e-6


def test_gradcheck_single_case_case_insensitive():
    result = runner.invoke(app, ["gradcheck", "--activation", "ReLU", "--loss", "cross_entropy"])
    assert result.exit_code == 0, result.output
    assert "relu" in result.output and "sigmoid" not in result.output


def test_gradcheck_bad_input_is_a_usage_error():
    for args in (["--activation", "gelu"], ["--sizes", "5"], ["--sizes", "a,b"], ["--eps", "0"]):
        result = runner.invoke(app, ["gradcheck", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
