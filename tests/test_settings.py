"""Settings from flags and environment: every value validated, contradictions refused,
each error naming the option and what it accepts (issue 10, item 8)."""

from __future__ import annotations

import pytest

from bridge.cli import main, parse_settings
from bridge.errors import ConfigError


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BRIDGE_LOG_LEVEL": "loud"}, "BRIDGE_LOG_LEVEL must be one of debug, info"),
        ({"BRIDGE_LOG_FORMAT": "xml"}, "BRIDGE_LOG_FORMAT must be one of auto, console, json"),
        ({"BRIDGE_READ_ONLY": "2"}, "BRIDGE_READ_ONLY='2' is not a boolean"),
        ({"BRIDGE_DEMO": "maybe"}, "BRIDGE_DEMO='maybe' is not a boolean"),
        ({"BRIDGE_CHANNEL_PUSH": "sure"}, "BRIDGE_CHANNEL_PUSH='sure' is not a boolean"),
        ({"BRIDGE_MAX_FRAME_MB": "0"}, "BRIDGE_MAX_FRAME_MB must be at least 1"),
        ({"BRIDGE_MAX_FRAME_MB": "nan"}, "not a finite number"),
        ({"BRIDGE_LOG_BUDGET_MB": "inf"}, "not a finite number"),
        ({"BRIDGE_LOG_NOTIFY_INTERVAL": "-1"}, "must be a number of seconds >= 0"),
        ({"BRIDGE_HANDSHAKE_WAIT": "-1"}, "BRIDGE_HANDSHAKE_WAIT must be a number of seconds"),
        ({"BRIDGE_HANDSHAKE_WAIT": "601"}, "from 0 to 600"),
        ({"BRIDGE_HANDSHAKE_WAIT": "nan"}, "not a finite number"),
        ({"BRIDGE_HANDSHAKE_WAIT": "soon"}, "BRIDGE_HANDSHAKE_WAIT"),
        (
            {"BRIDGE_ALLOW_TOOLS": "get_status,get_logs", "BRIDGE_DENY_TOOLS": "get_logs"},
            "--allow-tools and --deny-tools both name get_logs",
        ),
        ({"BRIDGE_ALLOW_TOOLS": " , "}, "names no tool"),
        ({"BRIDGE_TRANSPORT": "carrier-pigeon"}, "--transport must be stdio or http"),
    ],
)
def test_bad_environment_values_are_refused_with_a_clear_error(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_settings([], env)


def test_a_huge_bad_value_is_quoted_short() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings([], {"BRIDGE_DEMO": "x" * 100_000})
    assert len(str(info.value)) < 200


def test_flags_are_validated_too() -> None:
    with pytest.raises(ConfigError, match="--max-frame-mb"):
        parse_settings(["--max-frame-mb", "0.5"], {})
    with pytest.raises(ConfigError, match="--log-budget-mb must be a number of MiB"):
        parse_settings(["--log-budget-mb", "inf"], {})


@pytest.mark.parametrize("value", ["1", "true", "YES", "on", "0", "false", "no", "off", ""])
def test_the_usual_boolean_spellings_are_accepted(value: str) -> None:
    _, settings = parse_settings([], {"BRIDGE_READ_ONLY": value})
    assert settings.read_only is (value.lower() in ("1", "true", "yes", "on"))


def test_good_values_still_parse() -> None:
    _, settings = parse_settings(
        [],
        {
            "BRIDGE_LOG_LEVEL": "debug",
            "BRIDGE_LOG_FORMAT": "json",
            "BRIDGE_MAX_FRAME_MB": "8",
            "BRIDGE_ALLOW_TOOLS": "get_status",
            "BRIDGE_DENY_TOOLS": "trigger",
        },
    )
    assert (settings.log_level, settings.log_format) == ("debug", "json")
    assert settings.max_frame_bytes == 8 * 1024 * 1024


def test_main_prints_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BRIDGE_LOG_LEVEL", "loud")
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "BRIDGE_LOG_LEVEL" in captured.err
