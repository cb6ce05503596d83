"""A SUMO scenario (.sumocfg) as data, and the command line that runs it reproducibly.

Owns finding the SUMO binary, reading the config's input/output files and building the
command (seed, no teleports, tripinfo with unfinished and undeparted trips). It must not
start SUMO itself (the runner does) nor write anything next to the scenario: outputs the
config names are redirected into the run's own directory, because installed scenarios live
in read-only package folders.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from simulators.traffic.errors import ScenarioError, SumoNotInstalledError

DEFAULT_END_S = 3600.0


def sumo_binary() -> str:
    """Path of the `sumo` executable: the eclipse-sumo wheel first, then SUMO_HOME, then PATH."""
    try:
        import sumo  # the eclipse-sumo wheel

        candidate = Path(sumo.SUMO_HOME) / "bin" / "sumo"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    home = os.environ.get("SUMO_HOME")
    if home and (Path(home) / "bin" / "sumo").exists():
        return str(Path(home) / "bin" / "sumo")
    found = shutil.which("sumo")
    if found:
        return found
    raise SumoNotInstalledError(
        "SUMO is not installed: pip install 'eclipse-sumo==1.28.*' 'libsumo==1.28.*' "
        "(or set SUMO_HOME to a SUMO installation)")


def _split_files(value: str, base: Path) -> list[Path]:
    return [(base / p.strip()).resolve() for p in value.replace(",", " ").split() if p.strip()]


@dataclass(frozen=True)
class Scenario:
    """What a .sumocfg names: network, routes, additionals, time window, and its own outputs."""

    sumocfg: Path
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...]
    begin_s: float
    end_s: float | None
    output_options: tuple[str, ...]  # names of output options the config sets (redirected)

    @classmethod
    def from_sumocfg(cls, path: str | Path) -> Scenario:
        cfg = Path(path).resolve()
        if not cfg.is_file():
            raise ScenarioError(f"{cfg}: no such .sumocfg file")
        try:
            root = ET.parse(cfg).getroot()
        except ET.ParseError as e:
            raise ScenarioError(f"{cfg}: not valid XML ({e})") from e
        base = cfg.parent
        values: dict[str, str] = {}
        outputs: list[str] = []
        for section in root:
            for opt in section:
                value = opt.get("value")
                if value is None:
                    continue
                values[opt.tag] = value
                if section.tag == "output":
                    outputs.append(opt.tag)
        net = values.get("net-file")
        if not net:
            raise ScenarioError(f"{cfg}: no <net-file> in <input>; SUMO needs a network")
        nets = _split_files(net, base)
        routes = _split_files(values.get("route-files", ""), base)
        adds = _split_files(values.get("additional-files", ""), base)
        for f in [*nets, *routes, *adds]:
            if not f.exists():
                raise ScenarioError(f"{cfg}: names {f}, which does not exist")
        try:
            begin = float(values.get("begin", "0"))
            end = float(values["end"]) if "end" in values else None
        except ValueError as e:
            raise ScenarioError(f"{cfg}: <begin>/<end> are not numbers ({e})") from e
        return cls(cfg, nets[0], tuple(routes), tuple(adds), begin, end, tuple(outputs))

    def horizon_s(self, end_s: float | None) -> float:
        """The run's end time on the scenario's clock (as SUMO's --end): the one asked for,
        else the config's, at most one hour after the config's begin."""
        if end_s is not None:
            if end_s <= self.begin_s:
                raise ScenarioError(
                    f"{self.sumocfg}: end {end_s:g} s is not after the scenario's begin "
                    f"{self.begin_s:g} s; the end is a time on the scenario's clock, e.g. "
                    f"{self.begin_s + DEFAULT_END_S:g} for one hour")
            return float(end_s)
        one_hour = self.begin_s + DEFAULT_END_S
        return min(self.end_s, one_hour) if self.end_s is not None else one_hour

    def command(self, *, seed: int, end_s: float, run_dir: Path,
                tripinfo: Path | None = None, extra_additional: tuple[Path, ...] = (),
                statistics: Path | None = None) -> list[str]:
        """SUMO command line (binary first) for one reproducible run of this scenario."""
        cmd = [sumo_binary(), "-c", str(self.sumocfg), "--seed", str(seed),
               "--end", f"{end_s:g}", "--time-to-teleport", "-1",
               "--no-step-log", "true", "--no-warnings", "true",
               "--duration-log.disable", "true"]
        adds = [*self.additional_files, *extra_additional]
        if adds:
            # The command line replaces the config's list, so the config's own files go first.
            cmd += ["--additional-files", ",".join(str(a) for a in adds)]
        for name in self.output_options:
            cmd += [f"--{name}", str(run_dir / f"cfg-{name}.xml")]
        if tripinfo is not None:
            cmd += ["--tripinfo-output", str(tripinfo),
                    "--tripinfo-output.write-unfinished", "true",
                    "--tripinfo-output.write-undeparted", "true"]
        if statistics is not None:
            cmd += ["--statistic-output", str(statistics)]
        return cmd
