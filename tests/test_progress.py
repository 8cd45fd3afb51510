"""Progress where a person waits (issue 25): a tqdm bar on a terminal, a line per shard or per
tenth of the steps in a log (CliRunner's stderr is no terminal), nothing with ``tinyaug -q``."""

from __future__ import annotations

import io
import re

import pytest
from click.testing import CliRunner

from tinyaug.pipelines.cli import main
from tinyaug.pipelines.cli.progress import Progress
from tinyaug.pipelines.experiment import toys as T

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_per_unit_and_at_the_end():
    stream = io.StringIO()
    with Progress(every=3, stream=stream, enabled=True) as progress:
        for step in range(1, 8):
            progress("stage 1", step, 7)
        for rows in (10, 10, 5):
            progress.advance("scoring dev", rows, 25)
    lines = stream.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "stage 1: 1/7 steps", "stage 1: 3/7 steps", "stage 1: 6/7 steps", "stage 1: 7/7 steps",
        "scoring dev: 10/25 rows", "scoring dev: 20/25 rows", "scoring dev: 25/25 rows"]
    assert re.search(r"stage 1: 3/7 steps \(43%\), [\d.e+]+ steps/s, about \d+s left", lines[1])


def test_a_terminal_gets_a_tqdm_bar_and_quiet_gets_nothing():
    terminal = Terminal()
    with Progress(stream=terminal, enabled=True) as progress:
        for step in range(1, 5):
            progress("finetune", step, 4)
    assert "finetune: 100%|" in terminal.getvalue() and "4/4" in terminal.getvalue()
    silent = io.StringIO()
    with Progress(stream=silent, enabled=False) as progress:
        progress("finetune", 1, 4)
    assert silent.getvalue() == ""


def _augment(tmp_path, tiny_dir, *quiet: str):
    return CliRunner().invoke(main, [*quiet, "augment", "--task", "sst2", "--limit", "6", "--shard-size", "2",
                                     "-n", "1", "--mlm", str(tiny_dir), "--device", "cpu", "--show", "0",
                                     "--out", str(tmp_path / f"aug{len(quiet)}")])


def test_augment_reports_each_shard_in_a_log_and_q_silences_it(tmp_path, tiny_dir):
    result = _augment(tmp_path, tiny_dir)
    assert result.exit_code == 0, result.output
    shards = [line for line in result.stderr.splitlines() if line.startswith("Augmenting: ")]
    assert [line.split(" (")[0] for line in shards] == [
        "Augmenting: 2/6 rows", "Augmenting: 4/6 rows", "Augmenting: 6/6 rows"]
    quiet = _augment(tmp_path, tiny_dir, "-q")
    assert quiet.exit_code == 0, quiet.output
    assert "Augmenting" not in quiet.output and "Wrote " in quiet.output


def test_finetune_reports_steps_and_scoring_and_q_silences_it(tmp_path):
    glue = T.write_glue_task(tmp_path / "glue", "sst2", train_rows=16, dev_rows=8)
    T.save_tiny_model(tmp_path / "encoder", T.tiny_config(layers=1), encoder_only=True)
    args = ["finetune", str(tmp_path / "encoder"), "--task", "sst2", "--data-dir", str(glue), "--max-steps", "10",
            "--batch-size", "4", "--epochs", "3", "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "t1")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    steps = [line.split(" (")[0] for line in lines if line.startswith("finetune: ")]
    assert steps == [f"finetune: {n}/10 steps" for n in range(1, 11)]  # a line per tenth of the steps
    assert any(line.startswith("scoring dev: 8/8 rows") for line in lines)
    quiet = CliRunner().invoke(main, ["-q", *args, "--out", str(tmp_path / "t2")])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and quiet.stdout.startswith("dev (8 examples)")


def _on_a_terminal(argv: list[str], cwd) -> list[tuple[float, bytes]]:
    """Run ``tinyaug ARGV`` on a pseudo-terminal (120 columns); what it wrote, with the time of each chunk."""
    import fcntl
    import os
    import pty
    import select
    import signal
    import struct
    import sys
    import termios
    import time

    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # the child: tinyaug on the terminal
        os.chdir(cwd)
        os.execv(sys.executable, [sys.executable, "-c", "from tinyaug.pipelines.cli import main; main()", *argv])
    chunks = []
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        while time.monotonic() - start < 120:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                chunks.append((time.monotonic() - start, data))
    finally:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):  # still running at the deadline: never hang the suite
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return chunks


def test_on_a_terminal_a_slow_start_is_never_silent(tmp_path, tiny_dir):
    """From its first moment (before torch is imported) to its first progress bar, a command that
    loads models says so on a line that ticks every second; nothing sits silent for seconds."""
    vectors = tmp_path / "v.txt"
    vectors.write_text("movie 1 0\nfilm 0.9 0.1\n", encoding="utf-8")
    chunks = _on_a_terminal(["augment", "--task", "sst2", "--limit", "3", "-n", "1", "--mlm", str(tiny_dir),
                             "--vectors", str(vectors), "--out", "out", "--show", "0"], tmp_path)
    text = b"".join(data for _, data in chunks).decode("utf-8", "replace")
    assert text.startswith("tinyaug augment: loading the input and the models ..."), text[:200]
    # the first line comes before the heavy imports, then a tick every second: the gaps stay far
    # below the seconds that importing torch and loading take (the limit leaves room for a busy machine)
    assert chunks[0][0] < 5.0
    times = [0.0] + [t for t, _ in chunks]
    assert max(b - a for a, b in zip(times, times[1:])) < 5.0, times
    assert "Augmenting" in text and "Wrote " in text and (tmp_path / "out").is_dir()


def test_the_heartbeat_ends_its_line_for_other_output_and_resumes_after_a_silence():
    import sys
    import time

    from tinyaug.pipelines.cli import progress as P

    stream = io.StringIO()
    before = sys.stderr
    beat = P._Heartbeat("tinyaug x: loading ...", stream)
    try:
        time.sleep(1.3)
        sys.stderr.write("Input: 3 rows\n")  # other output: the ticking line ends first
        time.sleep(3.4)  # two silent seconds: a new ticking line below it
    finally:
        beat.stop()
    assert sys.stderr is before  # put back
    lines = [line.split("\r")[-1] for line in stream.getvalue().split("\n")]  # what a terminal shows
    assert lines[0] == "tinyaug x: loading ... 1s"
    assert lines[1] == "Input: 3 rows"
    assert re.fullmatch(r"tinyaug x: loading \.\.\. [3-5]s", lines[2]), lines
    assert lines[3:] == [""]


def test_work_of_unknown_size_counts_in_a_log():
    stream = io.StringIO()
    with Progress(unit="rows", stream=stream, every=100) as shown:
        for _ in range(5):
            shown.advance("bench: rows augmented", 60, None)
    counts = [int(re.match(r"bench: rows augmented: (\d+) rows", line).group(1)) for line in stream.getvalue().splitlines()]
    assert counts == [60, 120, 240, 300]  # the first report, each hundred crossed, the end
