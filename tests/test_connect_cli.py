"""`cse connect <vendor> [--install-fields]` against the sandboxes."""

from __future__ import annotations

from typer.testing import CliRunner

from app.cli import cli
from sandbox.hubspot import start_sandbox as start_hubspot
from sandbox.intercom import start_sandbox as start_intercom
from sandbox.salesforce import start_sandbox as start_salesforce


def _env(tmp_path, **extra) -> dict:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'cse.db'}", "CSE_DATA_DIR": str(tmp_path), **extra}


def test_hubspot_fields_are_reported_missing_then_installed(tmp_path):
    with start_hubspot() as sandbox:
        env = _env(tmp_path, **sandbox.settings_env())
        checked = CliRunner().invoke(cli, ["connect", "hubspot"], env=env)
        assert checked.exit_code == 1
        assert "cse_health_score" in checked.output
        installed = CliRunner().invoke(cli, ["connect", "hubspot", "--install-fields"], env=env)
        assert installed.exit_code == 0, installed.output
        assert "created companies.cse_health_score" in installed.output
        assert CliRunner().invoke(cli, ["connect", "hubspot"], env=env).exit_code == 0


def test_intercom_attributes_installed(tmp_path):
    with start_intercom() as sandbox:
        env = _env(tmp_path, **sandbox.settings_env())
        assert CliRunner().invoke(cli, ["connect", "intercom"], env=env).exit_code == 1
        installed = CliRunner().invoke(cli, ["connect", "intercom", "--install-fields"], env=env)
        assert installed.exit_code == 0 and "created company.cse_health_band" in installed.output


def test_salesforce_points_at_the_metadata_to_deploy(tmp_path):
    with start_salesforce(cse_fields=False) as bare:
        result = CliRunner().invoke(cli, ["connect", "salesforce", "--install-fields"],
                                    env=_env(tmp_path, **bare.settings_env()))  # fmt: skip
    assert result.exit_code == 1
    assert "CSE_Health_Score__c" in result.output and "deploy the metadata" in result.output
    with start_salesforce(cse_fields=True) as deployed:
        result = CliRunner().invoke(cli, ["connect", "salesforce"], env=_env(tmp_path, **deployed.settings_env()))
    assert result.exit_code == 0, result.output
