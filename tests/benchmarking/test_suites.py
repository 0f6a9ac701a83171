"""Every benchmark suite the command line dispatches is one it accepts."""

from __future__ import annotations

import re
from pathlib import Path

import benchmarks.__main__ as cli


def test_every_dispatched_suite_is_a_choice_of_the_command_line():
    source = Path(cli.__file__).read_text()
    dispatched = set(re.findall(r'args\.suite == "([a-z-]+)"', source)) | set(cli.SIMPLE_SUITES)
    action = next(a for a in cli.build_parser()._actions if a.dest == "suite")
    assert {"traintime", "sensitivity-cost"} <= dispatched
    assert dispatched <= set(action.choices), dispatched - set(action.choices)
