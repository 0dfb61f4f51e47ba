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
