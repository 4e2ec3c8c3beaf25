"""The programs a card offers are the programs defined (files and stored versions), never names without a program:
an enrollment request for one would wait forever."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.cards.actions import ActionRefused, parse_action
from app.programs.catalog import offered_programs
from app.programs.definitions import save_program_version
from app.settings import Settings
from engine.programs import DEFAULT_PROGRAMS_DIR

NEW_PROGRAM = (DEFAULT_PROGRAMS_DIR / "nps_quarterly.yaml").read_text().replace("program: nps_quarterly",
                                                                               "program: winback")  # fmt: skip


def test_cards_offer_the_defined_programs_and_a_stored_one(store, tmp_path):
    (tmp_path / "retention.yaml").write_text((DEFAULT_PROGRAMS_DIR / "retention.yaml").read_text())
    settings = Settings(database_url="sqlite://", programs_dir=tmp_path)
    with store.begin() as conn:
        assert offered_programs(settings, conn) == ("retention",)
        save_program_version(conn, "winback", NEW_PROGRAM, "admin@vendor.example")
        offered = offered_programs(settings, conn)
    assert offered == ("retention", "winback")
    assert parse_action({"type": "enroll", "program": "winback"}, offered).program == "winback"
    with pytest.raises(ActionRefused):
        parse_action({"type": "enroll", "program": "adoption"}, offered)


def test_the_shipped_programs_are_offered_and_a_configured_name_without_a_program_is_dropped(store):
    settings = Settings(database_url="sqlite://")
    with store.connect() as conn:
        shipped = offered_programs(settings, conn)
        configured = offered_programs(replace(settings, card_programs=("retention", "adoption", "onboarding")), conn)
    assert {"onboarding", "retention", "expansion", "advocacy"} <= set(shipped)
    assert "adoption" not in shipped and "renewal" not in shipped
    assert configured == ("retention", "onboarding")
