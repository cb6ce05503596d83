"""The city layout file: every controlled intersection, its phases, movements and detectors.

Owns the file's schema (JSON or TOML, unknown keys forbidden) and its conversion into the
timing core's specs. Detector ``d`` of an intersection is position ``d`` in its
``detectors`` list and index ``d`` of the telemetry's ``det_*`` arrays; phase ``p`` is index
``p`` of ``signal`` and of a plan's ``splits_s``. It must not read telemetry or hold state.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from controlroom.timing import (
    DetectorSpec,
    IntersectionSpec,
    MovementSpec,
    PhaseSpec,
    Structure,
    build_structure,
)
from edge.contract import MAX_DETECTORS, MAX_PHASES

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Seconds = Annotated[float, Field(ge=0, le=600, allow_inf_nan=False)]
# A plan's cycle and splits are at most 300 s on the wire (edge.contract.PlanBody).
PlanSeconds = Annotated[float, Field(ge=0, le=300, allow_inf_nan=False)]


class LayoutError(ValueError):
    """The layout cannot be used; ``problems`` lists (where, what), where names the
    intersection by its id."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {where}: {what}" for where, what in problems)
        super().__init__(f"invalid city layout ({source}):\n{lines}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PhaseLayout(_Model):
    movements: tuple[Annotated[int, Field(ge=0)], ...] = Field(min_length=1, description="Indices "
                                                               "of the movements this phase serves.")
    min_green_s: Seconds = 7.0
    max_green_s: PlanSeconds = 60.0
    yellow_s: Seconds = 3.0
    all_red_s: Seconds = 1.0
    ped_min_s: Seconds = Field(0.0, description="Pedestrian walk + clearance during this phase.")


class MovementLayout(_Model):
    width_m: float = Field(gt=0, le=50, allow_inf_nan=False, description="PKJI effective width We.")
    protected: bool = True
    downstream: tuple[tuple[Ident, Annotated[int, Field(ge=0)]], ...] = Field(
        (), max_length=4, description="[intersection id, detector index] of the detectors "
        "downstream of this movement.")


class DetectorLayout(_Model):
    movement: int = Field(ge=0)
    counts: bool = True
    queues: bool = True


class IntersectionLayout(_Model):
    id: Ident
    name: str = Field("", max_length=200)
    x: float = Field(0.0, allow_inf_nan=False)
    y: float = Field(0.0, allow_inf_nan=False)
    phases: tuple[PhaseLayout, ...] = Field(min_length=1, max_length=MAX_PHASES)
    movements: tuple[MovementLayout, ...] = Field(min_length=1, max_length=64)
    detectors: tuple[DetectorLayout, ...] = Field((), max_length=MAX_DETECTORS)
    cycle_min_s: PlanSeconds | None = None
    cycle_max_s: PlanSeconds | None = None
    upstream: Ident | None = None
    travel_time_s: Seconds = 0.0


class CityLayout(_Model):
    """The file's root. Cross-references are checked by `parse_layout`, which every reader uses."""

    city: str = Field(max_length=120)
    intersections: tuple[IntersectionLayout, ...] = Field(min_length=1, max_length=100_000)

    def index(self) -> dict[str, int]:
        return {x.id: i for i, x in enumerate(self.intersections)}

    def specs(self) -> list[IntersectionSpec]:
        """The timing core's specs, in layout order."""
        index = self.index()
        return [IntersectionSpec(
            phases=[PhaseSpec(movements=list(p.movements), min_green_s=p.min_green_s,
                              max_green_s=p.max_green_s, yellow_s=p.yellow_s,
                              all_red_s=p.all_red_s, ped_min_s=p.ped_min_s) for p in x.phases],
            movements=[MovementSpec(width_m=m.width_m, protected=m.protected,
                                    downstream=[(index[j], d) for j, d in m.downstream])
                       for m in x.movements],
            detectors=[DetectorSpec(movement=d.movement, counts=d.counts, queues=d.queues)
                       for d in x.detectors],
            cycle_min_s=x.cycle_min_s, cycle_max_s=x.cycle_max_s,
            upstream=-1 if x.upstream is None else index[x.upstream],
            travel_time_s=x.travel_time_s,
        ) for x in self.intersections]


def _reference_problems(layout: CityLayout) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for x in layout.intersections:
        if x.id in seen:
            problems.append((f"intersection {x.id}", "id used twice"))
        seen[x.id] = len(x.detectors)
    for x in layout.intersections:
        n_mov = len(x.movements)
        for p, phase in enumerate(x.phases):
            for m in phase.movements:
                if m >= n_mov:
                    problems.append((f"intersection {x.id} phases[{p}].movements",
                                     f"movement {m} does not exist ({n_mov} movements)"))
        for d, det in enumerate(x.detectors):
            if det.movement >= n_mov:
                problems.append((f"intersection {x.id} detectors[{d}].movement",
                                 f"movement {det.movement} does not exist ({n_mov} movements)"))
        for m, mv in enumerate(x.movements):
            for j, d in mv.downstream:
                if j not in seen:
                    problems.append((f"intersection {x.id} movements[{m}].downstream",
                                     f"no intersection {j!r}"))
                elif d >= seen[j]:
                    problems.append((f"intersection {x.id} movements[{m}].downstream",
                                     f"intersection {j} has no detector {d} ({seen[j]} detectors)"))
        if x.upstream is not None:
            if x.upstream == x.id:
                problems.append((f"intersection {x.id} upstream", "is the intersection itself"))
            elif x.upstream not in seen:
                problems.append((f"intersection {x.id} upstream", f"no intersection {x.upstream!r}"))
    return problems


_CORE_WHERE = re.compile(r"^intersection (\d+)")


def parse_layout(raw: Any, source: str = "layout") -> tuple[CityLayout, Structure]:
    """Validate a decoded layout document and build the core's structure from it."""
    try:
        layout = CityLayout.model_validate(raw)
    except ValidationError as exc:
        raise LayoutError(source, [(_where(raw, err["loc"]), _what(err))
                                   for err in exc.errors(include_url=False)]) from exc
    problems = _reference_problems(layout)
    if problems:
        raise LayoutError(source, problems)
    try:
        structure = build_structure(layout.specs())
    except ValueError as exc:
        # The core names intersections by index; the operator knows them by id.
        text = str(exc)
        match = _CORE_WHERE.match(text)
        if match and int(match[1]) < len(layout.intersections):
            text = f"intersection {layout.intersections[int(match[1])].id}" + text[match.end():]
        where, _, what = text.partition(": ")
        raise LayoutError(source, [(where, what or text)]) from exc
    return layout, structure


def load_layout(path: Path) -> tuple[CityLayout, Structure]:
    """Read a .json or .toml layout file; LayoutError names the file, intersection and field."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LayoutError(source, [("(file)", f"cannot read: {exc.strerror or exc}")]) from exc
    try:
        raw = tomllib.loads(text) if str(path).endswith(".toml") else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LayoutError(source, [("(file)", f"not valid {'TOML' if str(path).endswith('.toml') else 'JSON'}: {exc}")]) from exc
    return parse_layout(raw, source)


def _what(err: Any) -> str:
    return "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"])


def _where(raw: Any, loc: tuple[Any, ...]) -> str:
    """A pydantic location with the intersection's id in place of its list index."""
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] == "intersections" and isinstance(loc[1], int):
        ident = f"#{loc[1]}"
        try:
            found = raw["intersections"][loc[1]].get("id")
            if isinstance(found, str):
                ident = found
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        rest = ""
        for p in loc[2:]:
            rest += f"[{p}]" if isinstance(p, int) else (f".{p}" if rest else str(p))
        return f"intersection {ident}" + (f" {rest}" if rest else "")
    return ".".join(parts) or "(root)"
