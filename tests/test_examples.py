"""The research script shown in the README is the file in examples/, and it trains."""

import os
import re
import subprocess
import sys

from conftest import REPO


def test_readme_shows_the_research_script_verbatim():
    readme = (REPO / "README.md").read_text()
    script = (REPO / "examples" / "research_loop.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert script in blocks


def test_research_script_reaches_80_percent_in_one_epoch(data_dir):
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "research_loop.py")],
        env={**os.environ, "FNN_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    accuracy = float(re.search(r"([\d.]+)%", result.stdout).group(1))
    assert accuracy > 80.0, result.stdout


def run_example(name: str, tmp_path) -> str:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.run([sys.executable, str(REPO / "examples" / name)], env=env,
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def test_readme_shows_every_recipe_verbatim():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    for name in ("save_and_resume.py", "custom_loss.py", "clip_and_schedule.py"):
        assert (REPO / "examples" / name).read_text() in blocks, name


def test_saved_params_and_states_resume_bit_identically(tmp_path):
    out = run_example("save_and_resume.py", tmp_path)
    assert out.splitlines() == [
        "adam: bit-identical after resuming: True",
        "eve: bit-identical after resuming: True",
    ]
    assert list(tmp_path.iterdir()) == []  # its temporary folder is gone


def test_a_custom_loss_is_checked_and_trains(tmp_path):
    out = run_example("custom_loss.py", tmp_path)
    error = float(re.search(r"error: ([\d.e+-]+)", out).group(1))
    before, after = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", out).groups())
    assert error < 1e-6 and after < 0.5 * before, out


def test_a_clipped_adam_on_a_cosine_schedule_trains(tmp_path):
    out = run_example("clip_and_schedule.py", tmp_path)
    loss = float(re.search(r"loss after 200 steps: ([\d.]+)", out).group(1))
    assert loss < 0.5 and "schedule count: 200" in out, out
