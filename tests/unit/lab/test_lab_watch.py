"""The membership watch's figures and its stop protocol (pure logic: no lab, no Consul)."""

from __future__ import annotations

import json
import uuid

import pytest
from picluster_lab import LabError, stop_watch, watch_files
from picluster_lab.watch import MembershipWatch, Poll


def figures(states: list[tuple[float, bool, str]]):
    polls = [Poll(t, ok, "http", {"10.0.0.2": state} if ok else {}) for t, ok, state in states]
    return MembershipWatch._figures("10.0.0.2", [p for p in polls if p.ok])


def test_longest_not_alive_runs_from_the_first_bad_poll_to_the_next_good_one():
    got = figures([(0.0, True, "alive"), (1.0, True, "absent"), (2.0, True, "expired"), (4.5, True, "alive"),
                   (5.0, True, "expiring"), (6.0, True, "alive")])
    assert got.longest_not_alive_s == 3.5
    assert got.polls_expiring == 1


def test_a_member_still_gone_at_the_end_counts_until_the_last_poll():
    assert figures([(0.0, True, "alive"), (2.0, True, "absent"), (9.0, True, "absent")]).longest_not_alive_s == 7.0


@pytest.fixture
def name() -> str:
    lab = f"unit-{uuid.uuid4().hex[:8]}"
    yield lab
    for path in watch_files(lab):
        path.unlink(missing_ok=True)


def test_stop_watch_reads_the_report_the_watch_wrote(name):
    out, _stop = watch_files(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"longest_not_alive_s": 1.5}))
    assert stop_watch(name, timeout=1) == {"longest_not_alive_s": 1.5}
    assert watch_files(name)[1].exists()  # the stop file the watch waits for


def test_stop_watch_without_a_watch_says_how_to_start_one(name):
    with pytest.raises(LabError, match=f"python3 lab watch --name {name}"):
        stop_watch(name, timeout=0.3)


def test_the_ready_file_appears_only_once_a_poll_is_answered_and_goes_with_the_watch(tmp_path, monkeypatch):
    """A background watch says when it has read Consul once, so the change it watches starts after that."""
    import threading
    import time

    from picluster_lab import watch as watch_module

    class FakeLab:
        @staticmethod
        def hosts():
            return ["master"]

        @staticmethod
        def address(_host):
            return "10.0.0.2"

    class FakeWatch:
        def __init__(self, *_args, **_kwargs):
            self.polls = [Poll(0.0, False, "http: connection refused")]

        def __enter__(self):
            return self

        def __exit__(self, *_exc):
            return None

        def report(self):
            return watch_module.WatchReport(interval_s=0.5, duration_s=1.0, polls=len(self.polls),
                                            polls_unanswered=1, longest_unanswered_s=0.5, members=[],
                                            timeline=list(self.polls))

    fake = FakeWatch()
    monkeypatch.setattr(watch_module, "MembershipWatch", lambda *a, **k: fake)
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    seen = {}

    def drive():
        time.sleep(1.2)
        seen["before_an_answer"] = ready.exists()
        fake.polls.append(Poll(1.0, True, "http", {"10.0.0.2": "alive"}))
        deadline = time.monotonic() + 5
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        seen["after_an_answer"] = ready.exists()
        stop.touch()

    driver = threading.Thread(target=drive)
    driver.start()
    watch_module.watch_until(FakeLab(), tmp_path / "out.json", stop, max_seconds=30, ready_file=ready)
    driver.join(timeout=10)
    assert seen == {"before_an_answer": False, "after_an_answer": True}
    assert not ready.exists()  # gone with the watch: a later run waits for its own
    assert json.loads((tmp_path / "out.json").read_text())["stopped_by"] == "stop file"
