"""An agent's bad value is quoted back cut to about 100 characters, whatever raised."""

from __future__ import annotations

from bridge.errors import UnknownResource, quoted


def test_an_unknown_name_is_quoted_cut_with_its_length() -> None:
    message = str(UnknownResource("resource", "a" * 250, ["api", "web"]))
    assert len(message) < 250
    assert "(250 chars)" in message


def test_a_huge_unknown_name_gets_no_close_match_search() -> None:
    exc = UnknownResource("resource", "web" * 100_000, ["web"])
    assert exc.matches == []
    assert len(str(exc)) < 250


def test_short_values_are_quoted_whole() -> None:
    assert quoted("fial") == "'fial'"
    assert str(UnknownResource("resource", "fial", ["fail"])).startswith(
        "no resource named 'fial'; did you mean 'fail'?"
    )
