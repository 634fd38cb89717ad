"""The command line on a terminal: a real pseudo-terminal, the CLI a real child process.

What only a terminal shows: colour (and ``NO_COLOR``), the live progress line whose
elapsed time advances between polls, and Ctrl-C's message on a line of its own.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import signal
import sys

import pytest

from inkit_async.testing import FakeInkit
from tests.support.markers import require

pytestmark = pytest.mark.subprocess

TOKEN = "cli-terminal-token-42"


class Terminal:
    """``python -m inkit_async ARGS`` with a pseudo-terminal as stdin, stdout and stderr."""

    def __init__(self) -> None:
        self.output = bytearray()
        self._master, self._slave = pty.openpty()
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, *args: str, env: dict[str, str]) -> None:
        """Start the CLI with *args* and *env*, and read its output as it comes."""
        require("subprocess")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "inkit_async", *args,
            stdin=self._slave, stdout=self._slave, stderr=self._slave, env=env,
        )  # fmt: skip
        os.close(self._slave)
        self._reader = asyncio.create_task(asyncio.to_thread(self._read))

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # EIO: every process holding the terminal has closed it
                return
            if not chunk:
                return
            self.output += chunk

    @property
    def text(self) -> str:
        """The output so far, decoded."""
        return self.output.decode(errors="replace")

    async def wait_for(self, pattern: str) -> re.Match[str]:
        """Wait until the output matches *pattern*; return the last match."""
        async with asyncio.timeout(30):
            while not (matches := list(re.finditer(pattern, self.text))):
                await asyncio.sleep(0.02)
        return matches[-1]

    async def finish(self) -> int:
        """Wait for the process and the last of its output; return its exit status."""
        assert self.process is not None
        assert self._reader is not None
        async with asyncio.timeout(30):
            code = await self.process.wait()
            await self._reader
        os.close(self._master)
        return code


@pytest.fixture
async def served(uvicorn_server) -> tuple[FakeInkit, dict[str, str]]:
    """A FakeInkit on 127.0.0.1, and the environment that points the CLI at it."""
    fake = FakeInkit(seed=5, token=TOKEN)
    url = await uvicorn_server(fake.app)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INKIT_", "NO_COLOR"))}
    env |= {"INKIT_BASE_URL": url, "INKIT_API_TOKEN": TOKEN, "TERM": "xterm"}
    return fake, env


async def test_ctrl_c_starts_its_message_on_a_fresh_line(served):
    """SIGINT while the live progress line is shown: the line is ended, then the message."""
    fake, env = served
    batch_id = fake.add_batch(docs_per_poll=0)
    terminal = Terminal()
    await terminal.start("batch", "wait", batch_id, "--poll-interval", "0.05", env=env)
    await terminal.wait_for(r"0/1 documents")
    assert terminal.process is not None
    terminal.process.send_signal(signal.SIGINT)
    assert await terminal.finish() == 130
    lines = terminal.text.replace("\r\n", "\n").split("\n")
    assert lines[-2] == "inkit-async: interrupted" or lines[-2].endswith(
        "inkit-async:\x1b[0m interrupted"
    )
    assert lines[-2].startswith(("inkit-async:", "\x1b[31minkit-async:"))  # not the bar's line
    assert "Traceback" not in terminal.text


async def test_the_elapsed_time_of_wait_advances_while_the_batch_does_not_move(served):
    """A batch that does not move: the live line is redrawn with a growing elapsed time."""
    fake, env = served
    batch_id = fake.add_batch(docs_per_poll=0)
    terminal = Terminal()
    await terminal.start("batch", "wait", batch_id, "--poll-interval", "30", env=env)
    await terminal.wait_for(r"0/1 documents \(0 failed\)  0\.[0-9]s")
    later = await terminal.wait_for(r"0/1 documents \(0 failed\)  [1-9]\d*\.\ds")
    assert len([r for r in fake.requests if r.path.endswith(batch_id)]) == 1  # one poll so far
    assert later.group().endswith("s")
    assert terminal.process is not None
    terminal.process.send_signal(signal.SIGINT)
    assert await terminal.finish() == 130


@pytest.mark.parametrize("no_color", [None, "", "1", "0"])
async def test_colour_on_a_terminal_unless_no_color_is_set(served, no_color):
    """On a terminal the table is coloured; a non-empty NO_COLOR, whatever its value, stops it."""
    fake, env = served
    batch_id = fake.add_batch(name="coloured")
    if no_color is not None:
        env = {**env, "NO_COLOR": no_color}
    terminal = Terminal()
    await terminal.start("batch", "get", batch_id, env=env)
    assert await terminal.finish() == 0
    assert "coloured" in terminal.text
    if no_color:
        assert "\x1b" not in terminal.text
    else:
        assert "\x1b[1mID" in terminal.text
        assert "\x1b[33mIn Progress" in terminal.text
    assert TOKEN not in terminal.text


async def test_watch_draws_one_live_line_per_batch(served):
    """`watch A B` on a terminal: a board of two lines redrawn in place until both finish."""
    fake, env = served
    first = fake.add_batch(destinations={"inkit_storage": 2})
    second = fake.add_batch(destinations={"inkit_storage": 3})
    terminal = Terminal()
    await terminal.start("batch", "watch", first, second, "--poll-interval", "0.01", env=env)
    assert await terminal.finish() == 0
    assert "\x1b[1F" in terminal.text  # up one line: the board is redrawn in place
    final = terminal.text.rsplit("\x1b[1F", 1)[1]
    assert f"{first}  \x1b[32mCompleted" in final
    assert f"{second}  \x1b[32mCompleted" in final
