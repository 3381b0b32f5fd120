"""The bridge's answers beside a real Tilt's own (CLI, ``GET /api/view``), on the demo
Tiltfile. One Tilt for the module; tests that change it put it back."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from fastmcp.exceptions import ToolError

from .conftest import DEADLINE_S, bridge, run_doctor
from .tiltproc import RealTilt, wait_until

pytestmark = pytest.mark.anyio

MODES = {0: "auto", 1: "manual", 2: "manual_no_init", 3: "auto_no_init"}


def tilt_rows(tilt: RealTilt) -> dict[str, tuple[str, str]]:
    return {
        name: (str(r["status"].get("updateStatus")), str(r["status"].get("runtimeStatus")))  # type: ignore[index, attr-defined]
        for name, r in tilt.uiresources().items()
    }


async def bridge_rows(b: Any) -> dict[str, tuple[str, str]]:
    rows = (await b.tool("list_resources"))["resources"]
    return {r["name"]: (r["update"], r["runtime"]) for r in rows}


def status_of(tilt: RealTilt, name: str) -> dict[str, Any]:
    return dict(tilt.uiresource(name)["status"])  # type: ignore[arg-type]


LEVEL_MARKS = ("ERROR ", "WARN ")


def texts(lines: list[str]) -> list[str]:
    """Non-empty lines, without the level mark the bridge puts before WARN/ERROR lines
    (``tilt logs`` shows the level by colour only)."""
    out = []
    for line in lines:
        for mark in LEVEL_MARKS:
            if line.startswith(mark):
                line = line[len(mark) :]
        if line.strip():
            out.append(line)
    return out


async def test_the_doctor_prints_what_tilt_lists(tilt: RealTilt) -> None:
    done = run_doctor(tilt)
    assert done.returncode == 0, done.stderr
    version = tilt.cli("version", port=False).split(",")[0].strip()  # "v0.37.6-dev, built …"
    first, *rows = done.stdout.splitlines()
    # the count leaves out (Tiltfile), as Tilt's web UI does; the rows list it
    assert first.startswith(f"Tilt {version}: {len(tilt.uiresources()) - 1} resources")
    listed = {row.split()[0] for row in rows if row.strip()} - {"RESOURCE"}
    assert listed == set(tilt.uiresources())


async def test_the_listing_is_tilt_get_uiresources(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        with anyio.fail_after(DEADLINE_S):
            while (ours := await bridge_rows(b)) != (theirs := tilt_rows(tilt)):
                await b.store.wait_changed(b.store.version)
        assert ours == theirs


def describe_mismatch(ours: dict[str, Any], tilt: RealTilt, name: str) -> list[str]:
    """What differs between describe_resource and ``tilt get uiresource``."""
    obj = tilt.uiresource(name)
    st: dict[str, Any] = obj["status"]  # type: ignore[assignment]
    meta: dict[str, Any] = obj["metadata"]  # type: ignore[assignment]
    pairs = {
        "update_status": (ours["update_status"], st["updateStatus"]),
        "runtime_status": (ours["runtime_status"], st["runtimeStatus"]),
        "trigger_mode": (ours["trigger_mode"], MODES[st.get("triggerMode", 0)]),
        "disabled": (ours["disabled"], st["disableStatus"]["state"] == "Disabled"),
        # ours: "url (name)" when Tilt names the link
        "endpoints": (
            [e.split(" ")[0] for e in ours["endpoints"]],
            [e["url"] for e in st.get("endpointLinks", [])],
        ),
        "labels": (sorted(ours["labels"]), sorted(meta.get("labels", {}))),
        "conditions": (
            {k: v.split()[0] for k, v in ours["conditions"].items()},
            {c["type"]: c["status"] for c in st.get("conditions", [])},
        ),
        "last error": (
            (ours["builds"] or [{}])[0].get("error"),
            (st.get("buildHistory") or [{}])[0].get("error"),
        ),
    }
    return [f"{k}: ours {a!r}, Tilt {b!r}" for k, (a, b) in pairs.items() if a != b]


async def test_describe_is_tilts_uiresource(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        for name in ("fail", "linked", "manual", "web", "never-ready", "(Tiltfile)"):
            # two live views read a moment apart: equal once neither is moving
            diff = ["not compared"]
            with anyio.move_on_after(DEADLINE_S):
                while diff := describe_mismatch(
                    await b.tool("describe_resource", name=name), tilt, name
                ):
                    await b.store.wait_changed(b.store.version)
            assert not diff, (name, diff)


async def test_logs_are_tilt_logs(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        for name in ("ok", "fail", "labeled"):
            out = await b.tool("get_logs", resource=name, timestamps=False, tail=500)
            assert texts(out["lines"]) == texts(tilt.logs(name)), name
        tail = await b.tool("get_logs", resource="fail", timestamps=False, tail=2)
        assert texts(tail["lines"]) == texts(tilt.logs("fail"))[-2:]


async def test_since_and_level_are_api_view(tilt: RealTilt) -> None:
    """Tilt's real levels and times are in GET /api/view (``tilt logs --json`` says info)."""
    view = tilt.api_view()
    log_list: dict[str, Any] = view["logList"]  # type: ignore[assignment]
    spans = {k: v.get("manifestName", "") for k, v in log_list["spans"].items()}
    segs = [s for s in log_list["segments"] if spans.get(s.get("spanId", "")) == "fail"]
    errors = [s["text"].strip() for s in segs if s.get("level") == "ERROR"]
    assert errors, "Tilt logged an ERROR for fail"
    cut = segs[len(segs) // 2]["time"]
    after = [s["text"].strip() for s in segs if s["time"] >= cut and s["text"].strip()]
    async with bridge(tilt) as b:
        level = await b.tool("get_logs", resource="fail", level="error", timestamps=False)
        assert all(any(e in line for line in level["lines"]) for e in errors)
        since = await b.tool("get_logs", resource="fail", since=cut, timestamps=False, tail=500)
        assert texts(since["lines"]) == after


async def test_source_is_tilt_logs_source(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        for source in ("runtime", "build"):
            out = await b.tool("get_logs", resource="ok", source=source, timestamps=False, tail=500)
            assert texts(out["lines"]) == texts(tilt.logs("ok", "--source", source)), source


async def test_trigger_wait_ok_and_error_are_tilts_build_results(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        before = {b_["spanID"] for b_ in status_of(tilt, "manual").get("buildHistory", [])}
        out = await b.tool("trigger", resource="manual", wait=True, timeout_s=DEADLINE_S)
        st = status_of(tilt, "manual")
        assert out["outcome"] == "ok"
        assert st["buildHistory"][0]["spanID"] not in before
        assert "error" not in st["buildHistory"][0]

        out = await b.tool("trigger", resource="fail", wait=True, timeout_s=DEADLINE_S)
        st = status_of(tilt, "fail")
        assert out["outcome"] == "error"
        assert st["buildHistory"][0]["error"] in out["error"]
        assert any("Build Failed" in line for line in out["log"])


async def test_trigger_wait_for_a_server_and_the_tiltfile(tilt: RealTilt) -> None:
    """A serve_cmd (build:N with no update cmd) and the Tiltfile (tiltfile:(Tiltfile):N)."""
    async with bridge(tilt) as b:
        for name in ("ticker", "(Tiltfile)"):
            before = {h["spanID"] for h in status_of(tilt, name).get("buildHistory", [])}
            out = await b.tool("trigger", resource=name, wait=True, timeout_s=DEADLINE_S)
            assert out["outcome"] == "ok", name
            assert status_of(tilt, name)["buildHistory"][0]["spanID"] not in before, name


async def test_get_changes_has_every_build_by_tilts_build_id(tilt: RealTilt) -> None:
    """`fail` fails again and again (error -> error): each build is an entry."""
    async with bridge(tilt) as b:
        cursor = (await b.tool("get_changes"))["cursor"]
        for _ in range(2):
            out = await b.tool("trigger", resource="fail", wait=True, timeout_s=DEADLINE_S)
            assert out["outcome"] == "error"
        changes = await b.tool("get_changes", cursor=cursor)
        finished = [
            t
            for t in changes["transitions"]
            if t["resource"] == "fail" and t["kind"] == "build_finished"
        ]
        history = status_of(tilt, "fail")["buildHistory"]
        assert [t["build"] for t in finished] == [h["spanID"] for h in reversed(history[:2])]
        assert all(t["new"] == "error" and "exit status 3" in t["error"] for t in finished)
        assert all(t["duration_s"] >= 0 for t in finished)


async def test_a_trigger_without_wait_reads_pending_at_once(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        out = await b.tool("trigger", resource="manual")
        assert out["outcome"] == "triggered"
        row = next(r for r in (await bridge_rows(b)).items() if r[0] == "manual")
        described = await b.tool("describe_resource", name="manual")
        assert described["state"] in ("pending", "building"), row
        await b.tool("wait_for", resources=["manual"], condition="up_to_date", timeout_s=30)


async def test_disable_and_enable_are_tilts_disable_status(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        out = await b.tool("disable", resources=["ticker"])
        assert out["results"][0]["confirmed"]
        assert status_of(tilt, "ticker")["disableStatus"]["state"] == "Disabled"
        assert (await bridge_rows(b))["ticker"] == tilt_rows(tilt)["ticker"]
        out = await b.tool("enable", resources=["ticker"])
        assert out["results"][0]["confirmed"]
        assert status_of(tilt, "ticker")["disableStatus"]["state"] == "Enabled"


async def test_a_button_click_runs_tilts_command(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        await b.tool("click_button", name="ok-hello", inputs={"WHO": "realtilt"})
        await b.until(
            lambda s: any(
                "hello realtilt from button" in line.text for line in b.store.logs.newest_first()
            )
        )
    wait_until(
        "tilt logs show the click",
        lambda: "hello realtilt from button" in tilt.logs("ok"),
        DEADLINE_S,
    )


async def test_trigger_mode_is_tilts_trigger_mode(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        await b.tool("set_trigger_mode", resource="labeled", mode="manual")
        assert status_of(tilt, "labeled").get("triggerMode", 0) == 1
        assert (await b.tool("describe_resource", name="labeled"))["trigger_mode"] == "manual"
        await b.tool("set_trigger_mode", resource="labeled", mode="auto")
        assert status_of(tilt, "labeled").get("triggerMode", 0) == 0


async def test_tiltfile_args_are_tilts_tiltfile_args(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        await b.tool("set_tiltfile_args", args=["alpha", "beta"])

        def args() -> list[str]:
            tf = json.loads(tilt.cli("get", "tiltfile", "(Tiltfile)", "-o", "json"))
            return list(tf["spec"].get("args", []))

        wait_until("Tilt has the args", lambda: args() == ["alpha", "beta"], DEADLINE_S)
        await b.tool("set_tiltfile_args", args=[])
        wait_until("Tilt has no args", lambda: args() == [], DEADLINE_S)


async def test_a_tiltfile_syntax_error_and_its_fix(tilt: RealTilt) -> None:
    tiltfile = tilt.project / "Tiltfile"
    good = tiltfile.read_text()
    async with bridge(tilt) as b:
        tiltfile.write_text(good + "\nthis is not starlark(\n")
        await b.until(lambda s: s.resources["(Tiltfile)"].update_status == "error")
        wait_until(
            "Tilt reports the error",
            lambda: status_of(tilt, "(Tiltfile)")["updateStatus"] == "error",
            DEADLINE_S,
        )
        status = await b.tool("get_status")
        theirs = status_of(tilt, "(Tiltfile)")["buildHistory"][0]["error"]
        assert status["tiltfile"] == "error"
        assert status["tiltfile_error"].split()[0] in theirs
        assert (await bridge_rows(b))["ok"] == tilt_rows(tilt)["ok"]  # the others keep state
        tiltfile.write_text(good)
        await b.until(
            lambda s: (
                s.resources["(Tiltfile)"].update_status == "ok"
                and s.resources["(Tiltfile)"].current_build is None
            ),
            DEADLINE_S * 2,
        )
        wait_until(
            "Tilt reloads it",
            lambda: status_of(tilt, "(Tiltfile)")["updateStatus"] == "ok",
            DEADLINE_S,
        )
        assert (await b.tool("get_status"))["tiltfile"] == "ok"


async def test_more_than_2mb_of_logs_tilt_truncates(tilt: RealTilt) -> None:
    """`spammer` prints 30 000 lines (~2.9 MB); Tilt keeps 2 MB and drops the oldest."""
    async with bridge(tilt) as b:
        out = await b.tool("trigger", resource="spammer", wait=True, timeout_s=120)
        assert out["outcome"] == "ok"
        await b.until(
            lambda s: any(
                "spam line 029999" in line.text for line in b.store.logs.newest_first(["spammer"])
            ),
            60,
        )
        theirs = texts(tilt.logs("spammer"))
        ours = await b.tool("get_logs", resource="spammer", timestamps=False, tail=3)
        assert texts(ours["lines"]) == theirs[-3:]
        assert not any("spam line 000000" in line for line in theirs)  # Tilt truncated
    # a new connection gets Tilt's truncated store as its complete view
    async with bridge(tilt) as b:
        ours = await b.tool("get_logs", resource="spammer", timestamps=False, tail=10_000)
        assert texts(ours["lines"])[-3:] == theirs[-3:]


async def test_bad_arguments_get_short_errors_from_the_real_stack(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        with pytest.raises(ToolError) as err:
            await b.client.call_tool("wait_for", {"resources": ["x" * 100_000]})
        assert len(str(err.value)) < 300
