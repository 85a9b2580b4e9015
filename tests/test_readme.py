"""Every script command the README shows composes its config as written (Hydra's `--cfg job`): a renamed
option or config group in the README fails here, without running each command to the end."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import ROOT, run_script

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
COMMANDS = [
    line.split("&&")[-1].strip()
    for block in BLOCKS
    for line in block.splitlines()
    if re.search(r"python scripts/(train|generate|evaluate|critic|app)\.py", line)
]


def test_the_readme_shows_the_commands_a_user_runs():
    scripts = {re.search(r"scripts/(\w+)\.py", c).group(1) for c in COMMANDS}
    assert {"train", "generate", "evaluate", "app"} <= scripts, COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_each_readme_command_composes(command):
    words = shlex.split(command.split("#")[0])
    script = re.search(r"scripts/(\w+)\.py", words[1]).group(1)
    result = run_script(script, *words[2:], "--cfg", "job")
    assert result.returncode == 0, (command, result.stderr[-2000:])
    assert "_target_" in result.stdout or "ckpt_path" in result.stdout, result.stdout[-1000:]
