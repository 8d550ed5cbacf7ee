"""``wangge up`` says where the console is and how to get a token; it runs the simulator for a demo store."""

from __future__ import annotations

from typer.testing import CliRunner

from api.cli.banner import up_banner
from api.cli.main import app as cli


def test_the_banner_names_the_console_and_the_token_command() -> None:
    """Check the console address (a wildcard host shown as loopback) and the sign-in hint."""
    lines = up_banner("0.0.0.0", 8000, "", True)
    assert lines[0] == "Console:  http://127.0.0.1:8000/console"
    assert any("wangge token create --role dispatcher" in line for line in lines)
    assert any("--no-simulate" in line for line in lines)


def test_the_banner_follows_host_port_and_root_path() -> None:
    """Check a named host, another port, a proxy prefix, and the simulator turned off."""
    lines = up_banner("10.1.2.3", 9100, "/wangge/", False)
    assert lines[0] == "Console:  http://10.1.2.3:9100/wangge/console"
    assert "http://10.1.2.3:9100/wangge/docs" in lines[2]
    assert "off" in lines[-1]
    assert up_banner("::", 80)[0] == "Console:  http://[::1]:80/console"
    assert len(up_banner("localhost", 80, simulating=None)) == 3


def test_up_takes_no_simulate() -> None:
    """Check that ``wangge up`` offers the switch that turns the simulator off."""
    result = CliRunner().invoke(cli, ["up", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--no-simulate" in result.output
