"""Program definitions (DESIGN §7, "Programs, not rules"): one YAML file per program, validated on load.

A program is a stateful sequence: an account enters when `entry` holds, is given an audience (the first of
`audiences` whose condition holds, else `default`) that picks each step's text, moves through dated `steps`
(offset in days from entering its tier, or from the previous step), and leaves when one of `exit` holds (or its
account churns). `tiers` (optional, ordered low to high) let an enrollment escalate: it moves up when a higher
tier's condition holds and never down, and a step already sent is never sent again. A share `holdout` of the
accounts that enter is a control group: enrolled and followed, never contacted.

Everything an admin writes is checked here, before anything runs: the schema with pydantic (unknown keys refused),
every condition with the expression language (engine/expressions.py: no eval, unknown columns and type errors
refused), every message template's fields against the known columns, and customer-facing text against internal
risk wording. Problems are reported as `file:line: field: message`.
"""

from __future__ import annotations

import re
import string
from datetime import date
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from engine.conditions import CONDITION_COLUMNS
from engine.expressions import ExpressionError, parse_condition
from engine.programs import program_files
from engine.programs.quiet import QuietRules, own_rules, quiet_problems
from engine.programs.render import MESSAGE_FIELDS
from engine.programs.surveys import SURVEY_COLUMNS
from engine.yaml_lines import line_of

__all__ = [
    "CHANNELS",
    "COLUMNS",
    "CUSTOMER_CHANNELS",
    "EXIT_REASONS",
    "INTERNAL_WORDS",
    "Program",
    "ProgramError",
    "Step",
    "parse_program",
    "program_files",
]

CHANNELS = ("crm_task", "inapp_message", "email")
CUSTOMER_CHANNELS = ("inapp_message", "email")  # what the customer reads; the rest is for the CSM
EXIT_REASONS = ("recovered", "converted", "graduated", "churned", "manual")
# Words that reveal how we rate a customer: never in what the customer reads (a message, an email).
INTERNAL_WORDS = (
    "risk", "churn", "health score", "at-risk", "at risk", "critical", "retention", "escalat", "detractor",
    "red account",
)  # fmt: skip
_TEMPLATE_FIELDS = frozenset(MESSAGE_FIELDS)
# What a program's conditions may read: the scored account columns and the latest survey answers.
COLUMNS = {**CONDITION_COLUMNS, **SURVEY_COLUMNS}

_Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
_Condition = Annotated[str, Field(min_length=1, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """What a step says: the title (task subject, message heading) and the body, with {column} fields."""

    title: Annotated[str, Field(min_length=1, max_length=255)]
    body: Annotated[str, Field(min_length=1, max_length=4000)]


class Step(_Strict):
    key: _Key
    day: Annotated[float, Field(ge=0, le=3650)]
    after: Literal["entry", "previous"] = "entry"  # entry = the day the enrollment entered its current tier
    channel: Literal["crm_task", "inapp_message", "email"]
    tier: _Key | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    problem: _Key | None = None  # tasks for the same problem and account are not stacked (one open task)
    survey: Literal["nps", "csat"] | None = None  # the message asks this; the answers are captured back
    text: dict[_Key, Text]

    @model_validator(mode="after")
    def _has_default(self) -> Step:
        if "default" not in self.text:
            raise ValueError("text needs a `default` variant (used when no audience matches)")
        if self.survey and self.channel not in CUSTOMER_CHANNELS:
            raise ValueError(f"a survey step asks the customer: channel must be one of {', '.join(CUSTOMER_CHANNELS)}")
        return self


def _as_text(value: object) -> object:
    """YAML reads an unquoted `2026-12-24` as a date and a list as a list: both mean the setting's text."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return value.isoformat() if isinstance(value, date) else value


_QuietText = Annotated[str, BeforeValidator(_as_text), Field(max_length=2000)]


class Quiet(_Strict):
    """The program's own quiet periods, in the syntax of the CSE_QUIET_* settings (engine/programs/quiet.py):
    `weekdays: sat,sun`, `hours: 20-8` (several: `12-13,20-8`), `blackouts: 2026-12-24..2026-12-26,2027-01-01`.
    `replace: false` (the default) adds them to the global ones; `true` uses only these for this program."""

    weekdays: _QuietText = ""
    hours: _QuietText = ""
    blackouts: _QuietText = ""
    replace: bool = False

    def rules(self, global_rules: QuietRules) -> QuietRules:
        """The quiet periods of this program's messages, given the global ones (the timezone stays global)."""
        own = own_rules(self.weekdays, self.hours, self.blackouts, global_rules.default_timezone)
        return own if self.replace else global_rules.merged(own)


class Tier(_Strict):
    name: _Key
    when: _Condition


class Program(_Strict):
    program: _Key
    title: Annotated[str, Field(min_length=1, max_length=255)]
    description: str = ""
    entry: _Condition
    exit: dict[Literal["recovered", "converted", "graduated"], _Condition] = {}
    # The exits that count as success (outcome and uplift); empty for a program measured by counts only.
    success: tuple[Literal["recovered", "converted", "graduated", "completed"], ...] = ("recovered",)
    reentry: Literal["never", "after_days", "always"] = "after_days"
    reentry_days: Annotated[int, Field(ge=0, le=3650)] = 30
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    audiences: dict[_Key, _Condition] = {}
    tiers: tuple[Tier, ...] = ()
    quiet: Quiet | None = None  # the program's own quiet periods for its customer messages
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> Program:
        keys = [s.key for s in self.steps]
        if len(set(keys)) != len(keys):
            raise ValueError(f"step keys must be unique, got {sorted({k for k in keys if keys.count(k) > 1})}")
        tiers = [t.name for t in self.tiers]
        if len(set(tiers)) != len(tiers):
            raise ValueError("tier names must be unique")
        for step in self.steps:
            if (step.tier is None) != (not tiers) or (step.tier is not None and step.tier not in tiers):
                wanted = f"one of {', '.join(tiers)}" if tiers else "absent (the program has no tiers)"
                raise ValueError(f"step {step.key}: tier must be {wanted}, got {step.tier!r}")
            unknown = set(step.text) - set(self.audiences) - {"default"}
            if unknown:
                raise ValueError(f"step {step.key}: text for unknown audiences {sorted(unknown)}")
        return self

    def tier_names(self) -> tuple[str, ...]:
        """The tiers low to high; a program without tiers has one, `all`."""
        return tuple(t.name for t in self.tiers) or ("all",)

    def steps_of(self, tier: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if (s.tier or "all") == tier)


class ProgramError(ValueError):
    """A program file refused; `problems` are `file:line: field: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _template_problems(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return [f"not a valid template: {error} (write {{{{ and }}}} for literal braces)"]
    problems = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion or not re.fullmatch(r"[a-z_][a-z0-9_]*", field):
            problems.append(f"{{{field}}}: a field is a plain column name, without '.', '[', '!' or ':'")
        elif field not in _TEMPLATE_FIELDS:
            problems.append(f"{{{field}}}: unknown field {field!r} (fields: {', '.join(sorted(MESSAGE_FIELDS))})")
    return problems


def _internal_wording(text: Text) -> str | None:
    words = f"{text.title} {text.body}".lower()
    return next((w for w in INTERNAL_WORDS if w in words), None)


def _checks(program: Program) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems past the schema: conditions, templates, wording, step order; each with its place in the file."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    conditions: list[tuple[tuple[str | int, ...], str]] = [(("entry",), program.entry)]
    conditions += [(("exit", reason), text) for reason, text in program.exit.items()]
    conditions += [(("audiences", name), text) for name, text in program.audiences.items()]
    conditions += [(("tiers", i, "when"), tier.when) for i, tier in enumerate(program.tiers)]
    for loc, text in conditions:
        try:
            parse_condition(text, COLUMNS)
        except ExpressionError as error:
            out.append((loc, f"{text!r}: {error}"))
    if program.quiet is not None:
        quiet = program.quiet
        out += [(("quiet", name), problem)
                for name, problem in quiet_problems(quiet.weekdays, quiet.hours, quiet.blackouts).items()]  # fmt: skip
    last_offset: dict[str, float] = {}
    for i, step in enumerate(program.steps):
        tier = step.tier or "all"
        offset = step.day if step.after == "entry" else last_offset.get(tier, 0.0) + step.day
        if offset < last_offset.get(tier, 0.0):
            out.append((("steps", i, "day"), f"step {step.key} falls due before the step listed above it"))
        last_offset[tier] = offset
        for audience, text in step.text.items():
            for part in ("title", "body"):
                out += [(("steps", i, "text", audience, part), p) for p in _template_problems(getattr(text, part))]
            if step.channel in CUSTOMER_CHANNELS and (word := _internal_wording(text)):
                out.append((("steps", i, "text", audience), f"customer-facing text uses internal wording {word!r}"))
    return out


def parse_program(text: str, where: str) -> Program:
    """Validate one program file's text; ProgramError lists every problem as `where:line: field: message`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProgramError([f"{where}: not valid YAML: {error}"]) from None

    def at(loc: tuple[str | int, ...], message: str) -> str:
        line = line_of(root, loc)
        field = ".".join(map(str, loc))
        return f"{where}:{line}: {field}: {message}" if line else f"{where}: {field}: {message}"

    try:
        program = Program.model_validate(data)
    except ValidationError as error:
        raise ProgramError([at(tuple(e["loc"]), e["msg"]) for e in error.errors()]) from None
    problems = [at(loc, message) for loc, message in _checks(program)]
    if problems:
        raise ProgramError(problems)
    return program
