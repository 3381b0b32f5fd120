"""The pure core of several Tilts: reading ``$TILT_DEV_DIR/config``, choosing the default
instance, and matching an ``instance`` argument. Recorded files are the real Tilt's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.instances import (
    DEFAULT_WEB_PORT,
    MAX_CONFIG_BYTES,
    AmbiguousInstance,
    Candidate,
    UnknownInstance,
    context_name,
    match_instance,
    parse_config,
    port_of_context,
    select,
)

DATA = Path(__file__).parent / "data" / "tilt-config"
TWO = (DATA / "two-instances.yaml").read_bytes()
NONE = (DATA / "none-running.yaml").read_bytes()

# --------------------------------------------------------------------------- config


def test_recorded_config_of_two_tilts_lists_both_web_ports() -> None:
    """The cluster servers (the API servers' random ports) are not the web ports."""
    config = parse_config(TWO)
    assert config.ports == {39109, 46749}
    assert config.problem is None
    assert not config.truncated


def test_recorded_config_after_the_last_tilt_exits_lists_none_and_is_fine() -> None:
    assert parse_config(NONE) == parse_config(NONE.decode())
    assert parse_config(NONE).ports == frozenset()
    assert parse_config(NONE).problem is None


@pytest.mark.parametrize(
    ("name", "port"),
    [
        ("tilt-default", 10350),
        ("tilt-10351", 10351),
        ("tilt-1", 1),
        ("tilt-65535", 65535),
        ("tilt-65536", None),
        ("tilt-0", None),
        ("tilt-010351", None),
        ("tilt-", None),
        ("kind-kind", None),
        ("tilt-default2", None),
        ("Tilt-10351", None),
    ],
)
def test_context_names_map_to_web_ports(name: str, port: int | None) -> None:
    assert port_of_context(name) == port


@given(st.integers(1, 65535))
def test_context_name_and_port_round_trip(port: int) -> None:
    assert port_of_context(context_name(port)) == port


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"", "empty"),
        (b"\xff\xfe not utf-8", "UTF-8"),
        (b'{"apiVersion": "v1", "contexts": []}\n', "JSON"),
        (b"contexts: [{name: tilt-1}]\nkind: Config\n", "block list"),
        (b"hello: world\n", "no top-level 'contexts'"),
        (b"- just\n- a list\n", "no top-level 'contexts'"),
        (b"x" * (MAX_CONFIG_BYTES + 1), "over"),
    ],
)
def test_a_file_that_is_not_what_tilt_writes_gives_no_ports_and_says_why(
    text: bytes, problem: str
) -> None:
    config = parse_config(text)
    assert config.ports == frozenset()
    assert config.problem is not None
    assert problem in config.problem


def test_other_tools_contexts_and_nested_names_are_ignored() -> None:
    text = """\
apiVersion: v1
contexts:
  # a comment
  - context:
      cluster: kind-kind
      extensions:
        - name: tilt-4000
          extension: {}
    name: kind-kind
  - name: "tilt-10351"   # quoted, name first
    context: {cluster: tilt-10351}
  - context:
      cluster: tilt-default
    name: 'tilt-default'
current-context: kind-kind
kind: Config
"""
    config = parse_config(text)
    assert config.ports == {10351, DEFAULT_WEB_PORT}
    assert not config.truncated


def test_a_file_read_while_tilt_rewrites_it_is_flagged_truncated() -> None:
    """client-go truncates then writes in place; a read can see the first half."""
    cut = TWO[: TWO.index(b"  name: tilt-46749\ncurrent-context")]
    config = parse_config(cut)
    assert config.truncated
    assert config.ports <= {39109}
    assert parse_config(b"").truncated


def test_more_contexts_than_the_cap_are_cut_and_said() -> None:
    items = "".join(f"- context: {{}}\n  name: tilt-{p}\n" for p in range(20000, 20100))
    config = parse_config(f"contexts:\n{items}kind: Config\n")
    assert len(config.ports) == 64
    assert config.problem is not None
    assert "only the first 64" in config.problem


_names = st.one_of(
    st.just("tilt-default"),
    st.integers(1, 70000).map(lambda p: f"tilt-{p}"),
    st.sampled_from(["kind-kind", "docker-desktop", "minikube", "tilt-x", "name"]),
)
_contexts = st.lists(
    st.tuples(_names, st.booleans()),  # name, with a nested `name` in extensions
    max_size=8,
    unique_by=lambda t: t[0],
)


def _kubeconfig(contexts: list[tuple[str, bool]]) -> dict[str, object]:
    def context(name: str, nested: bool) -> dict[str, object]:
        inner: dict[str, object] = {"cluster": name, "user": name}
        if nested:
            inner["extensions"] = [{"name": "tilt-4242", "extension": {"a": 1}}]
        return {"context": inner, "name": name}

    return {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"server": "https://127.0.0.1:1"}, "name": n} for n, _ in contexts]
        or None,
        "contexts": [context(n, nested) for n, nested in contexts] or None,
        "current-context": "",
        "kind": "Config",
        "users": [{"name": n, "user": {"token": "REDACTED"}} for n, _ in contexts] or None,
    }


@settings(max_examples=150)
@given(_contexts, st.sampled_from([2, 4]))
def test_the_parser_agrees_with_a_yaml_library_on_kubeconfigs(
    contexts: list[tuple[str, bool]], indent: int
) -> None:
    """Differential: our tiny parser against PyYAML, on files dumped like client-go's
    (sorted keys, block style) with either indentation."""
    text = yaml.safe_dump(_kubeconfig(contexts), sort_keys=True, indent=indent)
    loaded = yaml.safe_load(text)
    expected = {port_of_context(c["name"]) for c in loaded["contexts"] or []} - {None}
    config = parse_config(text)
    assert config.ports == expected
    assert config.problem is None
    assert not config.truncated


@settings(max_examples=150)
@given(_contexts, st.data())
def test_a_cut_short_read_never_invents_a_tilt_and_never_silently_loses_one(
    contexts: list[tuple[str, bool]], data: st.DataObject
) -> None:
    text = yaml.safe_dump(_kubeconfig(contexts), sort_keys=True)
    full = parse_config(text).ports
    cut = data.draw(st.integers(0, len(text) - 1))
    partial = parse_config(text[:cut])
    assert partial.ports <= full
    assert partial.truncated or partial.ports == full


@given(st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode))
def test_any_bytes_give_a_config_never_an_exception(data: bytes) -> None:
    config = parse_config(data)
    assert all(0 < p < 65536 for p in config.ports)


# --------------------------------------------------------------------------- selection

A = Candidate(10351, "/work/a/Tiltfile")
B = Candidate(10352, "/work/b/Tiltfile")
NESTED = Candidate(10353, "/work/a/svc/dev.tiltfile")
SAME_AS_A = Candidate(10354, "/work/a/Tiltfile")
DEFAULT = Candidate(DEFAULT_WEB_PORT, "/elsewhere/Tiltfile")
UNKNOWN = Candidate(10355, None)


@pytest.mark.parametrize(
    ("candidates", "workspaces", "explicit", "port", "reason"),
    [
        (
            [A, B],
            ["/work/a/src"],
            None,
            10351,
            "the Tiltfile folder /work/a contains the workspace /work/a/src",
        ),
        ([A, B], ["/work/b"], None, 10352, "the Tiltfile folder /work/b is the workspace"),
        ([A, B, NESTED], ["/work/a/svc/x"], None, 10353, "folder /work/a/svc contains"),
        ([A, B, NESTED], ["/work/a/other"], None, 10351, "folder /work/a contains"),
        (
            [A, B],
            ["/work/ab"],
            None,
            None,
            "no Tiltfile folder contains the working directory /work/ab",
        ),
        ([A, B], ["/work"], None, None, "pass instance="),
        ([A, NESTED], ["/work/a/svc"], None, 10353, "/work/a/svc is the workspace"),
        ([B, NESTED], ["/work/a"], None, 10353, "the only one inside the workspace /work/a"),
        ([A], ["/nowhere"], None, 10351, "only one Tilt is running"),
        ([A, B], ["/work/a"], 10352, 10352, "--port 10352 was given"),
        ([], ["/work/a"], 4000, 4000, "--port 4000 was given"),
        ([], ["/work/a"], None, DEFAULT_WEB_PORT, "no Tilt is running"),
        ([A, DEFAULT], ["/nowhere"], None, DEFAULT_WEB_PORT, "Tilt's default port"),
        ([A, SAME_AS_A], ["/work/a"], None, 10351, "port 10354 serves the same folder"),
        ([A, B], ["/work/zz", "/work/b/x"], None, 10352, "folder /work/b contains"),
        ([A, B], ["relative/path"], None, None, "(none)"),
    ],
)
def test_selection_rule(
    candidates: list[Candidate],
    workspaces: list[str],
    explicit: int | None,
    port: int | None,
    reason: str,
) -> None:
    choice = select(candidates, explicit_port=explicit, workspaces=workspaces)
    assert choice.port == port
    assert reason in choice.reason


def test_the_first_mcp_root_with_a_tilt_decides() -> None:
    choice = select([A, B], workspaces=["/work/b/x", "/work/a/x"], workspace_source="MCP roots")
    assert choice.port == B.port


def test_an_instance_whose_tiltfile_is_unknown_leaves_the_choice_unsettled() -> None:
    """A Tilt's first complete view can lack its UISession (recording 01-startup)."""
    choice = select([A, UNKNOWN], workspaces=["/work/a"])
    assert choice.port == A.port
    assert not choice.settled
    assert "port 10355 is not known yet" in choice.reason
    assert select([A, B], workspaces=["/work/a"]).settled


def test_the_explicit_port_source_is_named() -> None:
    choice = select([A], explicit_port=10351, explicit_source="TILT_PORT")
    assert choice.reason == "TILT_PORT 10351 was given"


_segment = st.sampled_from(["a", "b", "c", "svc", "x"])
_folders = st.lists(_segment, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p))


@st.composite
def _scene(draw: st.DrawFn) -> tuple[list[Candidate], str]:
    folders = draw(st.lists(_folders, min_size=1, max_size=6))
    ports = draw(
        st.lists(
            st.integers(1024, 65535), min_size=len(folders), max_size=len(folders), unique=True
        )
    )
    candidates = [Candidate(p, f"{f}/Tiltfile") for p, f in zip(ports, folders, strict=True)]
    return candidates, draw(_folders)


def _contains(folder: str, path: str) -> bool:
    return path == folder or path.startswith(folder + "/")


@settings(max_examples=300)
@given(_scene(), st.randoms())
def test_the_choice_is_the_deepest_folder_around_the_workspace_in_any_order(
    scene: tuple[list[Candidate], str], rnd: object
) -> None:
    candidates, workspace = scene
    shuffled = list(candidates)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    choice = select(shuffled, workspaces=[workspace])
    assert choice == select(candidates, workspaces=[workspace])  # order does not matter
    around = [c for c in candidates if _contains(str(c.folder), workspace)]
    if around:
        deepest = max(len(str(c.folder)) for c in around)
        chosen = next(c for c in candidates if c.port == choice.port)
        assert chosen in around
        assert len(str(chosen.folder)) == deepest
        # ties between Tilts of the same folder go to the lowest port
        assert chosen.port == min(c.port for c in around if c.folder == chosen.folder)
    elif len(candidates) == 1:
        assert choice.port == candidates[0].port


@given(_scene(), st.integers(1, 65535))
def test_an_explicit_port_always_wins(scene: tuple[list[Candidate], str], port: int) -> None:
    candidates, workspace = scene
    assert select(candidates, explicit_port=port, workspaces=[workspace]).port == port


@given(_scene())
def test_a_tilt_elsewhere_does_not_change_a_containment_choice(
    scene: tuple[list[Candidate], str],
) -> None:
    candidates, workspace = scene
    before = select(candidates, workspaces=[workspace])
    if not any(_contains(str(c.folder), workspace) for c in candidates):
        return
    other = Candidate(1, "/unrelated/Tiltfile")
    after = select([*candidates, other], workspaces=[workspace])
    assert after.port == before.port


# --------------------------------------------------------------------------- instance argument

RUNNING = [A, B, NESTED]


@pytest.mark.parametrize(
    ("value", "port"),
    [
        ("10351", 10351),
        (" 10352 ", 10352),
        ("tilt-10353", 10353),
        ("a", 10351),
        ("svc", 10353),
        ("/work/b", 10352),
        ("/work/a/svc/dev.tiltfile", 10353),
    ],
)
def test_an_instance_argument_names_a_port_a_context_a_folder_or_a_path(
    value: str, port: int
) -> None:
    assert match_instance(value, RUNNING) == port


def test_tilt_default_names_port_10350() -> None:
    assert match_instance("tilt-default", [DEFAULT, A]) == DEFAULT_WEB_PORT


def test_an_unknown_instance_lists_close_matches_and_what_runs() -> None:
    with pytest.raises(UnknownInstance) as info:
        match_instance("10315", RUNNING)
    message = str(info.value)
    assert "did you mean " in message
    assert "running: 10351 (a), 10352 (b), 10353 (svc)" in message
    assert "10351" in info.value.matches


def test_a_port_that_runs_no_tilt_is_unknown() -> None:
    with pytest.raises(UnknownInstance, match="no instance named '4000'"):
        match_instance("4000", RUNNING)


def test_a_huge_bad_instance_argument_is_quoted_short() -> None:
    with pytest.raises(UnknownInstance) as info:
        match_instance("z" * 100_000, RUNNING)
    assert len(str(info.value)) < 400
    assert "z" * 100 + "…" in str(info.value)


def test_no_tilt_running_says_so() -> None:
    with pytest.raises(UnknownInstance, match="no Tilt is running"):
        match_instance("a", [])


def test_a_folder_name_two_tilts_share_is_ambiguous() -> None:
    """Two git worktrees named alike: /wt/1/app and /wt/2/app."""
    one, two = Candidate(20001, "/wt/1/app/Tiltfile"), Candidate(20002, "/wt/2/app/Tiltfile")
    with pytest.raises(AmbiguousInstance, match=r"names 2 Tilts: 20001 .*, 20002 .*pass the port"):
        match_instance("app", [one, two])
    assert match_instance("20002", [one, two]) == 20002
