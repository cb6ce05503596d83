"""The command line: the services the demo starts one after another parse with their own small
parser (no device, simulator or benchmark module imported), and nothing else changes."""

from __future__ import annotations

import subprocess
import sys

from kota.cli import SERVICES, build_parser, command_of


def test_the_command_word_is_found_past_the_global_options() -> None:
    assert command_of(["--config", "edge.toml", "--log-level", "INFO", "edge", "run"]) == "edge"
    assert command_of(["broker"]) == "broker"
    assert command_of(["--log-level", "DEBUG", "controlroom", "run"]) == "controlroom"
    assert command_of(["--help"]) is None and command_of([]) is None
    assert command_of(["bench", "video"]) == "bench"


def test_a_service_parses_alike_without_the_other_modules() -> None:
    argv = ["--config", "x.toml", "edge", "run"]
    small, full = build_parser(services_only=True), build_parser()
    assert vars(small.parse_args(argv)) == vars(full.parse_args(argv))
    assert set(SERVICES) <= set(small._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    code = ("import sys, kota.cli as c; c.build_parser(services_only=True); "
            "print(sorted(m for m in sys.modules if m.startswith(('kota.bench', 'kota.sim', "
            "'kota.device', 'firmware_sim.controller', 'firmware_sim.onvif', 'simulators'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
