"""Program files: checked on load with file, line and field; the shipped programs are valid and say nothing to a
customer that reveals internal risk wording; versions are stored with author and time."""

from __future__ import annotations

import pytest

from app.programs.definitions import active_programs, program_versions, save_program_version
from engine.programs import DEFAULT_PROGRAMS_DIR
from engine.programs.definition import (
    CUSTOMER_CHANNELS,
    INTERNAL_WORDS,
    ProgramError,
    parse_program,
    program_files,
)

GOOD = """\
program: demo
title: Demo
entry: risk >= 40
steps:
  - key: hello
    day: 0
    channel: email
    text:
      default:
        title: Hello {first_name}
        body: Your team logged in {logins_30d} times.
"""


def refused(text: str) -> str:
    with pytest.raises(ProgramError) as caught:
        parse_program(text, "demo.yaml")
    return str(caught.value)


def test_a_valid_program_loads():
    program = parse_program(GOOD, "demo.yaml")
    assert program.steps[0].key == "hello" and program.holdout == 0.1


@pytest.mark.parametrize(
    "entry, part",
    [
        ("__import__('os').system('true')", "function calls are not allowed"),
        ("risk.real > 3", "attribute access"),
        ("nps > 8", "unknown column 'nps'"),
        ("band > 3", "takes numbers"),
        ("risk", "not a condition"),
    ],
)
def test_conditions_refuse_code_unknown_columns_and_type_errors_with_file_and_line(entry, part):
    message = refused(GOOD.replace("entry: risk >= 40", f'entry: "{entry}"'))
    assert message.startswith("demo.yaml:3: entry: ") and part in message


def test_schema_errors_name_the_line_and_field():
    message = refused(GOOD.replace("channel: email", "channel: fax"))
    assert message.startswith("demo.yaml:7: steps.0.channel:")
    assert "demo.yaml:1: program:" in refused(GOOD.replace("program: demo", "program: Demo!"))


def test_templates_name_known_fields_only_and_run_nothing():
    assert "unknown field 'password'" in refused(GOOD.replace("{first_name}", "{password}"))
    assert "plain column name" in refused(GOOD.replace("{first_name}", "{name.__class__}"))
    assert "plain column name" in refused(GOOD.replace("{first_name}", "{name[0]}"))


def test_customer_facing_text_may_not_use_internal_wording():
    message = refused(GOOD.replace("Hello {first_name}", "Your churn risk is high"))
    assert "demo.yaml:9: steps.0.text.default: customer-facing text uses internal wording 'risk'" in message
    # the same words are fine in a CSM's task
    parse_program(GOOD.replace("channel: email", "channel: crm_task").replace("Hello", "Churn risk for"), "x")


def test_step_order_and_tiers_are_checked():
    assert "falls due before" in refused(GOOD.replace("  - key: hello\n    day: 0", "  - key: hello\n    day: 5")
                                         + GOOD[GOOD.index("  - key"):].replace("hello", "later"))  # fmt: skip
    assert "tier must be" in refused(GOOD.replace("    channel: email", "    channel: email\n    tier: high"))


def test_shipped_programs_are_valid_and_customer_texts_are_clean():
    files = program_files(DEFAULT_PROGRAMS_DIR)
    assert {"retention"} <= set(files)
    for path in files.values():
        program = parse_program(path.read_text(encoding="utf-8"), str(path))
        assert program.program == path.stem
        for step in program.steps:
            if step.channel not in CUSTOMER_CHANNELS:
                continue
            for text in step.text.values():
                words = f"{text.title} {text.body}".lower()
                assert not [w for w in INTERNAL_WORDS if w in words], (path.name, step.key)


def test_versions_are_stored_with_author_and_become_active(store, tmp_path):
    (tmp_path / "demo.yaml").write_text(GOOD)
    with store.begin() as conn:
        assert active_programs(conn, tmp_path)["demo"].version == 0
        save_program_version(conn, "demo", GOOD.replace("risk >= 40", "risk >= 50"), "ana@vendor.example")
        with pytest.raises(ProgramError):
            save_program_version(conn, "demo", GOOD.replace("risk >= 40", "nps > 1"), "bob@vendor.example")
        versions = program_versions(conn, "demo", tmp_path)
        active = active_programs(conn, tmp_path)["demo"]
    assert [(v.version, v.author) for v in versions] == [(0, "file"), (1, "ana@vendor.example")]
    assert versions[1].created_at is not None
    assert active.version == 1 and active.program.entry == "risk >= 50"


def test_a_programs_own_quiet_periods_are_checked_with_line_and_field():
    quiet = "holdout: 0.1\nquiet:\n  weekdays: [sat, sun]\n  hours: 20-8\n  blackouts: 2026-12-24\n"
    program = parse_program(GOOD.replace("entry: risk >= 40\n", "entry: risk >= 40\n" + quiet), "demo.yaml")
    assert (program.quiet.weekdays, program.quiet.hours, program.quiet.blackouts) == ("sat,sun", "20-8", "2026-12-24")
    bad = quiet.replace("20-8", "25-3").replace("[sat, sun]", "[sat, funday]")
    message = refused(GOOD.replace("entry: risk >= 40\n", "entry: risk >= 40\n" + bad))
    assert "demo.yaml:6: quiet.weekdays: 'fun' is not a weekday" in message
    assert "demo.yaml:7: quiet.hours: '25-3' needs two different hours" in message
    assert "demo.yaml:5: quiet.window: Extra inputs" in refused(
        GOOD.replace("entry: risk >= 40\n", "entry: risk >= 40\nquiet:\n  window: 20-8\n")
    )
