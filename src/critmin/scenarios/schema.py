"""Scenario files: a whole study in YAML (or JSON), validated before any work starts.

Every error names the field, the value and what is allowed, in one line. `extends: base.yaml`
inherits another file (child keys win, nested mappings merged); cycles of `extends` and
self-referencing YAML anchors are refused. Resource limits (`limits:`) are explicit.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from critmin.data import commodity as resolve_commodity
from critmin.data import countries_of
from critmin.data.io import read_user_bytes
from critmin.errors import CritminError, InputError
from critmin.market.parameters import check_overrides
from critmin.metrics.dependence import trade_years
from critmin.scenarios.ensemble import HARD_MAX_DRAWS  # no configuration goes beyond it

Countries = str | list[str]
MAX_FILE_BYTES = 1_000_000  # scenario files are a few kilobytes
MAX_VALUES = 20_000  # a study has a few hundred values; YAML aliases can expand to billions


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML would keep
    the last silently, so a study could run with a setting its author did not see)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key if isinstance(key, str | int | float | bool) else id(key_node))
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, label: str) -> Any:
    """YAML (or JSON) text to data; every failure one InputError naming `label`."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or error
        raise InputError(f"{label}:{where} is not valid YAML: {problem}") from None
    except RecursionError:
        raise InputError(f"{label}: nested too deeply to be a study") from None


def check_size(data: Any, label: str, budget: int = MAX_VALUES) -> None:
    """Refuse data with more than `budget` values, counting shared (aliased) values each
    time they appear, so a YAML "billion laughs" stops here instead of in validation."""
    stack, seen = [data], 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > budget:
            raise InputError(f"{label}: more than {budget:,} values; a study is far smaller")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _countries(value: Countries | None) -> Countries | None:
    """Check that every name resolves (country, group or comma list)."""
    if value is None:
        return value
    for name in [value] if isinstance(value, str) else value:
        try:
            countries_of(str(name))
        except CritminError as error:
            raise ValueError(str(error)) from None
    return value


class BanSpec(Strict):
    exporter: str
    targets: Countries | None = None
    _check = field_validator("exporter", "targets")(_countries)


class QuotaSpec(Strict):
    exporter: str
    fraction: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
    targets: Countries | None = None
    aggregate: bool = False
    _check = field_validator("exporter", "targets")(_countries)


class TariffSpec(Strict):
    importers: Countries
    rate: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    exporters: Countries | None = None
    _check = field_validator("importers", "exporters")(_countries)


class ExportTaxSpec(Strict):
    exporter: str
    rate: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    targets: Countries | None = None
    _check = field_validator("exporter", "targets")(_countries)


class ZoneSpec(Strict):
    members: Countries
    floors: dict[str, float | str] = Field(min_length=1)
    mechanism: Literal["tariff", "guarantee"] = "tariff"
    _check = field_validator("members")(_countries)


class ControlSpec(Strict):
    """A measure of the export-control tracker by id (critmin agreements controls), modelled
    as a ban or as a licence quota keeping `fraction` of base exports."""

    measure: str
    model: Literal["ban", "quota"] = "ban"
    fraction: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.5

    @field_validator("measure")
    @classmethod
    def _known(cls, value: str) -> str:
        from critmin.registry.controls import measure

        try:
            item = measure(value)
        except CritminError as error:
            raise ValueError(str(error)) from None
        if item["kind"] == "suspension":
            raise ValueError(f"{value} suspends measures; name a measure it suspends instead")
        return value


class PoliciesSpec(Strict):
    controls: list[ControlSpec] = []
    bans: list[BanSpec] = []
    quotas: list[QuotaSpec] = []
    tariffs: list[TariffSpec] = []
    export_taxes: list[ExportTaxSpec] = []
    zone: ZoneSpec | None = None
    releases: dict[str, Annotated[float, Field(ge=0.0, allow_inf_nan=False)]] = {}
    capacity: dict[str, Annotated[float, Field(ge=1.0, allow_inf_nan=False)]] = {}


class HazardSpec(Strict):
    base_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    governance_weight: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    ban_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3
    quota_low: Annotated[float, Field(gt=0.0, le=1.0)] = 0.3
    quota_high: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    elasticity_cv: Annotated[float, Field(ge=0.0, le=2.0)] = 0.3
    probabilities: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = {}


class EnsembleSpec(Strict):
    draws: Annotated[int, Field(ge=1, le=HARD_MAX_DRAWS)]
    seed: Annotated[int, Field(ge=0)] = 0
    targets: Literal["all", "bloc"] = "all"
    hazard: HazardSpec = HazardSpec()


class LimitsSpec(Strict):
    max_draws: Annotated[int, Field(ge=1, le=HARD_MAX_DRAWS)] = 100_000
    max_commodities: Annotated[int, Field(ge=1, le=65)] = 20


class Study(Strict):
    """A study: base year, commodities, bloc, policies, horizon, parameters, outputs."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    base_year: int | None = None
    horizon: Literal["short", "long"] = "short"
    # The stage whose market is solved (issue 16); None: each commodity's own HS-bundle stage.
    stage: Literal["mine", "refined", "product"] | None = None
    commodities: list[str] = Field(min_length=1)
    bloc: Countries | None = None
    policies: PoliciesSpec = PoliciesSpec()
    # "active": the registry's signed and in-force commitments with tonnes count as secured
    # supply to their recipients (critmin.scenarios.commitments).
    agreements: Literal["none", "active"] = "none"
    parameters: dict[str, float | dict[str, float]] = {}
    ensemble: EnsembleSpec | None = None
    outputs: list[Literal["markets", "prices", "flows", "ensemble"]] = [
        "markets",
        "prices",
        "flows",
        "ensemble",
    ]
    limits: LimitsSpec = LimitsSpec()

    @field_validator("commodities")
    @classmethod
    def _commodities(cls, value: list[str]) -> list[str]:
        ids = []
        for name in value:
            try:
                ids.append(resolve_commodity(name).id)
            except CritminError as error:
                raise ValueError(str(error)) from None
        if len(set(ids)) != len(ids):
            raise ValueError("a commodity is listed twice")
        return ids

    @field_validator("bloc")
    @classmethod
    def _bloc(cls, value: Countries | None) -> Countries | None:
        return _countries(value)

    @field_validator("base_year")
    @classmethod
    def _year(cls, value: int | None) -> int | None:
        years = trade_years()
        if value is not None and value not in years:
            raise ValueError(f"no trade data for {value}; years with data: {years[0]}-{years[-1]}")
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict) -> dict:
        try:
            check_overrides(value)
        except CritminError as error:
            raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _limits(self) -> Study:
        if self.ensemble and self.ensemble.draws > self.limits.max_draws:
            raise ValueError(
                f"ensemble.draws = {self.ensemble.draws:,} exceeds limits.max_draws = "
                f"{self.limits.max_draws:,}; raise limits.max_draws (at most "
                f"{HARD_MAX_DRAWS:,}) if you mean it"
            )
        if len(self.commodities) > self.limits.max_commodities:
            raise ValueError(
                f"{len(self.commodities)} commodities exceed limits.max_commodities = "
                f"{self.limits.max_commodities}"
            )
        zone = self.policies.zone
        if zone:
            seen: dict[str, str] = {}
            for name in zone.floors:
                try:
                    item = resolve_commodity(name).id
                except CritminError as error:
                    raise ValueError(f"policies.zone.floors: {error}") from None
                if item in seen:  # refused, as on the command line (`zone --floor`)
                    raise ValueError(
                        f"policies.zone.floors: two floors for {item} ({seen[item]!r} and "
                        f"{name!r}); give one"
                    )
                seen[item] = name
                if item not in self.commodities:
                    raise ValueError(f"policies.zone.floors: {item} is not in commodities")
        return self

    def digest(self) -> str:
        """SHA-256 of the validated study (canonical JSON): the scenario hash."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _merge(base: dict, child: dict) -> dict:
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_acyclic(
    value: Any, path: str, seen: tuple[int, ...] = (), done: set[int] | None = None
) -> None:
    """Refuse self-referencing anchors; each shared (aliased) node is walked once."""
    done = set() if done is None else done
    if isinstance(value, dict | list):
        if id(value) in seen:
            raise InputError(f"{path}: a YAML anchor refers to itself (a cycle); expand it")
        if id(value) in done:
            return
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            _check_acyclic(child, path, (*seen, id(value)), done)
        done.add(id(value))


def read_study_file(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """The raw mapping of a scenario file with its `extends` chain merged."""
    path = Path(path).resolve()
    if path in chain:
        cycle = " → ".join(p.name for p in (*chain, path))
        raise InputError(f"extends cycle: {cycle}")
    try:
        info = path.stat()
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
            raise InputError(
                f"{path.name}: {info.st_size:,} bytes; scenario files are limited to "
                f"{MAX_FILE_BYTES:,} (they are a few kilobytes)"
            )
    except OSError as error:
        raise InputError(f"cannot read scenario file {path}: {error.strerror}") from None
    # Regular files only (no device, FIFO), read to the byte bound whatever the size says.
    data = read_user_bytes(path, MAX_FILE_BYTES, "scenario file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path.name}: not UTF-8 text; save the file as UTF-8") from None
    data = parse_yaml(text, path.name)
    if not isinstance(data, dict):
        raise InputError(
            f"{path.name}: a scenario file is a mapping of keys (name, commodities, ...)"
        )
    _check_acyclic(data, path.name)
    check_size(data, path.name)
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or "\x00" in parent:  # NUL: no path can hold it
            raise InputError(f"{path.name}: extends must be a file name, got {parent!r}")
        data = _merge(read_study_file(path.parent / parent, (*chain, path)), data)
    return data


def load_study(path: str | Path) -> Study:
    """Read and validate a scenario file; one clear InputError for the first problem."""
    data = read_study_file(Path(path))
    return validate_study(data, Path(path).name)


def validate_study(data: dict, label: str = "scenario") -> Study:
    """Validate a study mapping; errors name the field, the value and what is allowed."""
    try:
        return Study.model_validate(data)
    except ValidationError as error:
        # An unknown key is usually the cause of a "field required" next to it: say it first.
        problems = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = problems[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key; allowed here: " + _allowed(first["loc"])
        shown = first.get("input")
        value = f" (got {shown!r})" if not isinstance(shown, dict) and shown is not None else ""
        more = f"; {error.error_count() - 1} more problem(s)" if error.error_count() > 1 else ""
        raise InputError(f"{label}: {where}: {message}{value}{more}") from None


def _allowed(loc: tuple) -> str:
    model: type[BaseModel] = Study
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            break
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            break
        model = nested[0]
    return ", ".join(model.model_fields)
