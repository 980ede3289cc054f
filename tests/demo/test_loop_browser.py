"""`manage.py loop` (what `make loop` runs) against real processes, both rounds, with the
sign-offs clicked in a real browser.

One test, a few minutes: the command is run as `make loop` runs it (a subprocess on a
fresh embedded state: SQLite and the filesystem broker in a temporary VAR_DIR, its own
web, serve, worker and beat), with fewer drifted rows and shorter canary steps than
the default (the same code path), and ``--signoffs external``: the loop says who signs
which review where and waits. The test reads its output line by line and, at each
step, opens the loop's own web process in Chromium as the persona concerned: the
owner sees the alerts on the monitor dashboard and the retraining run on the model
page; each approver finds the review in their inbox and signs it, re-entering the
password the loop printed (both rounds); the owner watches the canary progress on the
deployments panel, then round two's automatic rollback and its reason; the compliance
officer reads it on the model's timeline. Then the test closes the loop's input
(``--hold`` kept its processes up for the last look), and reads the outcomes back from
the loop's database.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.conftest import log_in, shot
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
MODEL = "credit-default"
DASHBOARD = f"/monitoring/models/{MODEL}/"
MODEL_PAGE = f"/models/{MODEL}/"
SIGNERS = ("owner", "validator", "compliance")
SEE = 20_000  # ms: what a page shows, on two cores shared with the loop's four processes

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


class LoopOutput:
    """The loop's output as it comes (a thread reads the pipe), and all of it at the end."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in process.stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=read, daemon=True).start()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def next(self, pattern: str, timeout: float = 300) -> re.Match:
        """Read lines until one matches ``pattern`` (a regex searched in the line)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} in {timeout:g} s:\n{self.tail()}")
            if line is None:
                self._queue.put(None)  # stays at the end
                pytest.fail(f"the loop ended before {pattern!r}:\n{self.tail()}")
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def rest(self, process: subprocess.Popen, timeout: float) -> int:
        code = process.wait(timeout=timeout)
        while (line := self._queue.get(timeout=30)) is not None:
            self.lines.append(line)
        return code

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.lines[-n:])


def until_shown(page: Any, url: str, selector: str, pattern: str, timeout: float = 90) -> str:
    """Reload ``url`` until ``selector``'s text matches ``pattern`` (a state that lasts
    seconds, such as a canary's step); returns the text."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        page.goto(url)
        found = page.locator(selector)
        seen = " | ".join(found.all_inner_texts())
        if re.search(pattern, seen):
            return seen
        page.wait_for_timeout(700)
    pytest.fail(f"{url} never showed {pattern!r} in {selector} (last: {seen!r})")


def sign_in_the_browser(
    page: Any, *, ask: re.Match, password: str, comment: str, wrong_password_first: bool = False
) -> None:
    """What the loop asked of this persona: the review, from their inbox, signed."""
    role, version, url, meaning = ask["role"], ask["version"], ask["url"], ask["meaning"]
    page.goto("/")
    waiting = page.locator("#section-waiting a", has_text=f"{MODEL} v{version}")
    expect(waiting).to_have_attribute("href", urlsplit(url).path, timeout=SEE)
    waiting.click()
    expect(page.locator("h1")).to_contain_text(f"Review of {MODEL} v{version}", timeout=SEE)
    mine = page.locator(f'table.checklist tr[data-requirement="signoff:{role}"]')
    expect(mine).to_contain_text("missing", timeout=SEE)
    form = page.locator("#signoff-form")
    if wrong_password_first:
        form.locator("select[name=decision]").select_option("approve")
        form.locator("select[name=meaning]").select_option(meaning)
        form.locator("input[name=password]").fill(password + "-not")
        form.locator("button[type=submit]").click()
        expect(page.locator("#review-errors")).to_contain_text("password is wrong", timeout=SEE)
        expect(mine).to_contain_text("missing")
    form.locator("select[name=decision]").select_option("approve")
    form.locator("select[name=meaning]").select_option(meaning)
    form.locator("textarea[name=comment]").fill(comment)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    expect(page.locator("#signoffs")).to_contain_text(comment, timeout=SEE)
    expect(mine).to_contain_text("passed", timeout=SEE)
    expect(page.locator("#signoff-form")).to_have_count(0)
    page.goto("/")  # no longer waiting for them
    expect(page.locator("#section-waiting")).to_be_visible()
    expect(waiting).to_have_count(0)


def signing_round(out: LoopOutput, pages: dict, passwords: dict, n: int, version: str) -> None:
    """The loop asks the three approvers; each finds the review in their inbox and signs."""
    asks = {}
    for _ in SIGNERS:
        ask = out.next(
            r">>> SIGN IN THE WEB UI: .+ \((?P<role>\w+)\) logs in as '(?P<username>[\w-]+)', "
            r"opens (?P<url>\S+) and signs v(?P<version>\d+) as '(?P<meaning>\w+)'"
        )
        assert ask["version"] == version and ask["username"] == ask["role"]
        asks[ask["role"]] = ask
    assert sorted(asks) == sorted(SIGNERS)
    for role in SIGNERS:  # before anyone signs, the review waits in each approver's inbox
        pages[role].goto("/")
        expect(pages[role].locator("#section-waiting")).to_contain_text(
            f"{MODEL} v{version}", timeout=SEE
        )
    shot(pages["validator"], f"loop-{n}-1-validator-inbox")
    for role in SIGNERS:
        sign_in_the_browser(
            pages[role],
            ask=asks[role],
            password=passwords[role],
            comment=comment(role, n),
            wrong_password_first=(n == 1 and role == "owner"),
        )
        out.next(rf"\] Signed by {role}: .+, signed in person \(approve\)", timeout=60)
    pages["compliance"].goto(urlsplit(asks["compliance"]["url"]).path)
    expect(pages["compliance"].locator("#review-state")).to_contain_text("Approved", timeout=SEE)
    expect(pages["compliance"].locator("table.checklist tr.status-missing")).to_have_count(0)
    shot(pages["compliance"], f"loop-{n}-2-approved")


def comment(role: str, n: int) -> str:
    return f"Signed in the browser by the {role}, round {n}."


def watch_the_canary(page: Any, version: str, n: int) -> Any:
    """The owner on the model page while the canary runs: its step and traffic share."""
    until_shown(
        page,
        MODEL_PAGE,
        "#env-production h3 .badge.running",
        rf"canary v{version}: step \d, [\d.]+%",
    )
    expect(page.locator("#env-production dl.meta")).to_contain_text(
        re.compile(rf"Candidate\s+v{version} \([\d.]+% of requests, step \d\)"), timeout=SEE
    )
    shot(page, f"loop-{n}-3-canary")
    row = page.locator("#env-production tr[id^=deployment-]").first
    expect(row).to_contain_text(f"v{version}")
    expect(row).to_contain_text("canary")
    return row


def sign_and_deploy(out: LoopOutput, pages: dict, passwords: dict, n: int, version: str) -> Any:
    """A round's review opened, signed in the browser and approved; its canary started and
    watched. Returns the canary's row on the owner's deployments panel."""
    round_two = r" \(round two\)" if n == 2 else ""
    out.next(rf"\] Review opened{round_two}: v{version}$", timeout=400)
    signing_round(out, pages, passwords, n, version)
    out.next(rf"\] Review approved{round_two}: v{version}$", timeout=60)
    out.next(rf"\] Canary started \(v{version}\)")
    return watch_the_canary(pages["owner"], version, n)


def test_the_loop_runs_both_rounds_with_the_signoffs_clicked_in_the_browser(browser, tmp_path):
    port, serve_port = free_port(), free_port()
    web = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "VAR_DIR") and not k.startswith("PYTEST")
    }
    env.update(
        VAR_DIR=str(tmp_path),
        DEBUG="1",
        SECRET_KEY="loop-test-" + "x" * 50,
        SITE_URL=web,  # as `make loop` sets it: the printed review links point here
        PYTHONUNBUFFERED="1",  # its lines as they happen
    )
    process = subprocess.Popen(  # our own command line
        [
            sys.executable,
            "manage.py",
            "loop",
            "--port",
            str(port),
            "--serve-port",
            str(serve_port),
            "--rows",
            "800",
            "--step-seconds",
            "8",
            "--timeout",
            "180",
            "--signoffs",
            "external",
            "--signoff-timeout",
            "240",
            "--hold",  # the processes stay up until the test closes the loop's input
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = LoopOutput(process)
    contexts: list[Any] = []
    problems: list[str] = []
    try:
        # The passwords the loop set for this run, as it prints them for the personas.
        passwords = {}
        for _ in SIGNERS:
            found = out.next(r"^  (owner|validator|compliance)\s+(\S+)\s+\(", timeout=420)
            passwords[found[1]] = found[2]
        out.next(r"\] Champion serving: ")
        pages = {}
        for role in SIGNERS:
            context = browser.new_context(base_url=web, viewport={"width": 1280, "height": 900})
            contexts.append(context)
            pages[role] = context.new_page()
            pages[role].set_default_timeout(SEE)
            pages[role].on(
                "console", lambda m: problems.append(m.text) if m.type == "error" else None
            )
            log_in(pages[role], role, passwords[role])
        owner = pages["owner"]

        # 3. The monitor's alerts, on its dashboard.
        monitor = out.next(r"\] Monitor created: (loop-\w+)")[1]
        drift = out.next(r"\] Alert opened \(drift\): (.+)$")[1]
        performance = out.next(r"\] Alert opened \(performance\): (.+)$")[1]
        owner.goto(DASHBOARD)
        alerts = owner.locator("#alerts tr[id^=alert-]", has_text=monitor)
        drift_row = alerts.filter(has_text="Data drift")
        expect(drift_row).to_contain_text(drift.split(":")[0], timeout=SEE)  # "2 of 4 ..."
        expect(drift_row).to_contain_text("debt_ratio, late_payments")
        expect(drift_row).to_contain_text("Open")
        performance_row = alerts.filter(has_text="Performance drop")
        expect(performance_row).to_contain_text(performance.split(":")[0])
        expect(performance_row).to_contain_text("Open")
        shot(owner, "loop-0-1-alerts")

        # 4-5. The retraining run the alert asked for, on the model page, with its candidate.
        run = out.next(r"\] Retraining run requested: retraining run #(\d+) of ")[1]
        candidate = out.next(r"\] Candidate trained: v(\d+): ", timeout=400)[1]
        owner.goto(MODEL_PAGE)
        run_row = owner.locator(f"#retraining-run-{run}")
        expect(run_row).to_contain_text("Monitoring alert", timeout=SEE)
        expect(run_row).to_contain_text(f"v{candidate}")
        expect(run_row).to_contain_text("in review")
        alert_id = re.search(r"alert #(\d+)", run_row.inner_text())[1]
        shot(owner, "loop-0-2-run")
        owner.goto(DASHBOARD)  # the alert that triggered it says so, and links to it
        trigger = owner.locator(f"#alert-{alert_id}")
        expect(trigger).to_contain_text(monitor, timeout=SEE)
        expect(trigger.locator(".alert-link a")).to_contain_text(f"Retraining run #{run}")

        # 6-7. The review in each approver's inbox, signed there with the re-entered
        # password; the canary, step by step on the deployments panel, promoted.
        row = sign_and_deploy(out, pages, passwords, 1, candidate)
        # The panel refreshes itself while the environment is busy (htmx, every 3 s).
        expect(row.locator(".badge")).to_have_text("succeeded", timeout=240_000)
        out.next(rf"\] Canary promoted \(v{candidate}\)", timeout=60)
        owner.goto(MODEL_PAGE)
        expect(owner.locator("#env-production a.stable-version")).to_have_text(f"v{candidate}")
        analyses = owner.locator("#env-production table.rollout-analyses").first
        expect(analyses).to_contain_text("replay")
        expect(analyses).to_contain_text("step 1")
        expect(analyses).to_contain_text("promote")
        expect(owner.locator("#env-production h3 .badge.running")).to_have_count(0)

        # 8. Round two: a bad candidate, signed the same way, rolled back by the analysis.
        bad = out.next(r"\] Bad candidate registered \(round two\): v(\d+): ", timeout=400)[1]
        row = sign_and_deploy(out, pages, passwords, 2, bad)
        expect(row.locator(".badge")).to_have_text("rolled_back", timeout=240_000)
        reason = out.next(rf"\] Canary rolled back \(v{bad}\): (.+)$", timeout=60)[1]
        assert reason.startswith("automatic rollback: accuracy"), reason
        owner.goto(MODEL_PAGE)
        newest = owner.locator("#env-production tr[id^=deployment-]").first
        expect(newest).to_contain_text(f"v{bad}")
        expect(newest.locator(".deployment-reason")).to_have_text(reason)
        expect(owner.locator("#env-production a.stable-version")).to_have_text(f"v{candidate}")
        analyses = owner.locator("#env-production table.rollout-analyses").first
        expect(analyses).to_contain_text("rollback")
        shot(owner, "loop-2-4-rolled-back")
        owner.goto(DASHBOARD)  # the rollback's alert, which no monitor opened
        rollback = owner.locator("#alerts tr[id^=alert-]", has_text="Automatic rollback").first
        expect(rollback).to_contain_text(f"{MODEL} v{bad} (canary) in production: {reason}")
        expect(rollback).to_contain_text("rollout")
        # The compliance officer reads the loop on the model's timeline.
        compliance = pages["compliance"]
        compliance.goto(MODEL_PAGE)
        timeline = compliance.locator("#panel-timeline")
        expect(timeline).to_contain_text(f"Rolled back in production to v{candidate}")
        expect(timeline).to_contain_text(reason)
        expect(timeline).to_contain_text(comment("compliance", 2))
        shot(compliance, "loop-2-5-timeline")

        out.next(r"^The processes keep running: look at ", timeout=120)
        process.stdin.close()  # the loop stops its processes and ends
        code = out.rest(process, timeout=120)
    finally:
        print(out.tail(120))  # shown when the test fails
        if process.poll() is None:  # a failed step: stop the loop and its processes
            process.stdin.close()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        for context in contexts:
            context.close()
    text = out.text
    assert code == 0, text[-6000:]
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems

    # What a person reads: who signs where, the timeline with hashes, the verdicts.
    assert text.count(">>> SIGN IN THE WEB UI") == 6, text  # three signers, two rounds
    assert ">>> A PERSON SIGNS HERE" not in text, "the loop signed nothing itself"
    assert "Round one: succeeded; round two: rolled_back" in text, text
    timeline = text.split("Timeline (time UTC, step, audit event hash):", 1)[1]
    hashes = re.findall(r"^  \d\d:\d\d:\d\d  .{38} ([0-9a-f]{16})  ", timeline, re.MULTILINE)
    assert len(hashes) >= 15, timeline
    assert len(re.findall(r"  Signed by \w+ +[0-9a-f]{16}  ", timeline)) == 6, timeline
    assert "Audit chain:" in text and "OK" in text.split("Audit chain:", 1)[1].upper(), text
    assert re.search(r"Wall time: \d+ s", text)

    # What the database holds (the command's own SQLite file).
    db = sqlite3.connect(tmp_path / "modelgate.sqlite3")
    kinds = {
        row[0]
        for row in db.execute(
            "select a.kind from monitoring_alert a join monitoring_monitor m "
            "on a.monitor_id = m.id where m.name like 'loop-%'"
        )
    }
    assert {"drift", "performance"} <= kinds
    runs = db.execute(
        "select r.outcome, v.number from lifecycle_retrainingrun r "
        "join registry_modelversion v on r.version_id = v.id "
        "where r.trigger = 'alert' order by r.id desc limit 1"
    ).fetchone()
    assert runs[0] == "candidate_submitted"
    assert runs[1] == int(candidate)
    reviewed = dict(
        db.execute(
            "select v.number, r.state from governance_review r "
            "join registry_modelversion v on r.version_id = v.id join registry_registeredmodel m "
            "on v.registered_model_id = m.id where m.name = 'credit-default'"
        )
    )
    assert reviewed[runs[1]] == "approved"
    assert reviewed[int(bad)] == "approved"
    signed = db.execute(
        "select v.number, s.role, u.username, s.comment, s.valid from governance_signoff s "
        "join governance_review r on s.review_id = r.id "
        "join registry_modelversion v on r.version_id = v.id join registry_registeredmodel m "
        "on v.registered_model_id = m.id join auth_user u on s.signer_id = u.id "
        "where m.name = 'credit-default' and v.number in (?, ?) order by v.number, s.id",
        (int(candidate), int(bad)),
    ).fetchall()
    assert signed == [
        (int(number), role, role, comment(role, n), 1)
        for n, number in ((1, candidate), (2, bad))
        for role in SIGNERS
    ], "each sign-off is the one clicked in the browser, once"
    deployments = db.execute(
        "select v.number, d.state, d.reason from lifecycle_deployment d "
        "join registry_modelversion v on d.version_id = v.id "
        "where d.strategy = 'canary' order by d.id"
    ).fetchall()
    assert [d[1] for d in deployments[-2:]] == ["succeeded", "rolled_back"]
    assert deployments[-2][0] == runs[1]
    assert deployments[-1][2] == reason, "a rollback names its reason"
    stable = db.execute(
        "select v.number from lifecycle_environment e join registry_modelversion v "
        "on e.stable_version_id = v.id join registry_registeredmodel m "
        "on e.registered_model_id = m.id where m.name = 'credit-default' and e.name = 'production'"
    ).fetchone()
    assert stable[0] == runs[1], "the promoted candidate still serves after the rollback"
