"""Scenarios, tests, the bench and the scripts reach the lab only through the
lab package (lab/picluster_lab).

Nothing under molecule/, bench/, tests/ or scripts/ may work out a node's
address, a container name, a lab's name or Consul membership by itself, nor
find lab containers by their labels or call this host's docker client on
them: `Lab(name)` reads all of that from the inventory `python3 lab up`
wrote, and `Lab.members()` is the one reader of swarm_members' output. This
test fails with the file, the line and what to use instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("molecule", "bench", "tests", "scripts")
PY, SH, YML = ".py", ".sh", ".yml"

MEMBERSHIP = "swarm_members run or read by hand"
# Deliberate exceptions: path -> the rules it is exempt from (None: all).
EXEMPT: dict[str, frozenset[str] | None] = {
    # site_state's test reads this host's own engine (a container it creates and removes), no lab's (the first
    # matching entry counts).
    "tests/integration/plugins/test_site_state_module.py": frozenset({"this host's docker client on a lab container"}),
    # The module's own tests and benchmark run swarm_members against Consul
    # agents they start themselves, not against a lab.
    "tests/integration/plugins": frozenset({MEMBERSHIP}),
    "bench/swarm_members_bench.py": frozenset({MEMBERSHIP}),
    # This check and the package's unit tests hold the patterns as data.
    "tests/unit/lab": None,
}


@dataclass(frozen=True)
class Rule:
    what: str
    pattern: re.Pattern[str]
    kinds: tuple[str, ...]
    use: str
    bad: tuple[str, ...]  # examples it must catch
    good: tuple[str, ...]  # examples it must leave alone


RULES = (
    Rule(
        "a container name",
        re.compile(r"picluster-(\{|%s|\$)|[\"']picluster-[\"']\s*[+~]"),
        (PY, SH, YML),
        "Lab.container(host)",
        bad=('f"picluster-{LAB}-{host}"', '"picluster-" + lab', "picluster-{{ lab_name }}-master", "picluster-$LAB"),
        good=('PROXY = "picluster-proxy"', "systemctl kill picluster-heartbeat"),
    ),
    Rule(
        "a node's address",
        re.compile(r"NetworkSettings|\{\{\s*\.IPAddress|\bip\s+(-4\s+)?(-o\s+)?a(ddr)?\s+show|hostname\s+-I"
                   r"|default_ipv4|\b10\.213\."),
        (PY, SH),
        "Lab.address(host)",
        bad=("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
             "ip -4 -o addr show eth0 | awk '{print $4}'", "facts['default_ipv4']", 'SUBNET = "10.213.5.0/24"'),
        good=("x509.IPAddress(ipaddress.ip_address('127.0.0.1'))", "subnet 10.231.7.0/24"),
    ),
    Rule(
        "lab containers found by their labels",
        re.compile(r"io\.picluster\.(lab|hostname|group)\b"),
        (PY, SH, YML),
        "Lab.hosts(group)",
        bad=('"--filter", f"label=io.picluster.lab={LAB}"', '{{.Label "io.picluster.hostname"}}'),
        good=('test_net["Labels"]["io.picluster.test"]',),
    ),
    Rule(
        "this host's docker client on a lab container",
        re.compile(r"\(\s*\[\s*[\"']docker[\"']\s*,\s*[\"'](exec|kill|start|stop|restart|inspect|ps|rm|pause|unpause"
                   r"|network|logs|cp|container)[\"']"
                   r"|^\s*(\w+=\$\()?docker\s+(exec|kill|start|stop|restart|inspect|ps|rm|network)\b", re.M),
        (PY, SH),
        "Lab.sh / Lab.run / Lab.kill / Lab.start",
        bad=('subprocess.run(["docker", "kill", name])', 'run(\n    ["docker", "exec", node, "true"])',
             "master=$(docker ps --filter x)", "  docker exec \"$master\" docker node ls"),
        good=('LAB.sh("node1", ["docker", "run", "--rm", "img"])', 'run(["docker", "version"])',
              'sh("master", "docker", "exec", PROXY, "cat", path)', "docker info >/dev/null"),
    ),
    Rule(
        "a lab's name",
        re.compile(r"[\"'}]mol-|mol-\{"),
        (PY, SH, YML),
        "Lab.from_env() in a test, `python3 lab ... --scenario NAME` in a playbook",
        bad=("f\"{prefix}mol-{scenario}\"", "{{ lookup('env', 'PICLUSTER_LAB_PREFIX') }}mol-{{ name }}",
             "lab = prefix + 'mol-' + s"),
        good=("# the lab of a scenario",),
    ),
    Rule(
        MEMBERSHIP,
        re.compile(r"[\"']picluster\.swarm\.swarm_members[\"']|-m\s+picluster\.swarm\.swarm_members"
                   r"|ansible\.posix\.json|\[[\"']members[\"']\]"),
        (PY, SH),
        "Lab.members() / Lab.member_state(host)",
        bad=('["ansible", "localhost", "-m", "picluster.swarm.swarm_members"]', 'result["members"]',
             'ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"'),
        good=('"""Consul through our own swarm_members module."""', "members = LAB.members()"),
    ),
    Rule(
        "a testinfra host spec",
        re.compile(r"ansible://"),
        (PY,),
        "Lab.testinfra_hosts() / Lab.testinfra_spec(host)",
        bad=('f"ansible://{h}?ansible_inventory={INVENTORY}"',),
        good=("testinfra_hosts = LAB.testinfra_hosts()",),
    ),
    Rule(
        "a retired lab entry point",
        re.compile(r"scripts/(lab\.py|lab-state\.sh|node_image\.py|app_images\.py|rootfs\.py)"
                   r"|playbooks/lab-state\.yml|\blabtools\b"),
        (PY, SH, YML),
        "`python3 lab <command>` and the picluster_lab package",
        bad=("python3 scripts/app_images.py load --lab x", "from labtools import sh"),
        good=("python3 lab images load --name x",),
    ),
)


NONE: frozenset[str] = frozenset()


def exempt_from(path: Path) -> frozenset[str] | None:
    """The rules a file is exempt from: none (empty), some, or all (None)."""
    rel = path.relative_to(ROOT).as_posix()
    for prefix, rules in EXEMPT.items():
        if rel == prefix or rel.startswith(prefix + "/"):
            return rules
    return frozenset()


def scanned_files() -> list[Path]:
    return [
        path
        for top in SCANNED
        for path in sorted((ROOT / top).rglob("*"))
        if path.suffix in (PY, SH, YML, ".yaml") and path.is_file() and exempt_from(path) is not None
    ]


def kind(path: Path) -> str:
    return YML if path.suffix == ".yaml" else path.suffix


def violations(text: str, file_kind: str, exempt: frozenset[str] = frozenset()) -> list[tuple[int, Rule, str]]:
    found = []
    for rule in RULES:
        if file_kind not in rule.kinds or rule.what in exempt:
            continue
        for match in rule.pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((line, rule, text.splitlines()[line - 1].strip()))
    return found


@pytest.mark.parametrize("rule", RULES, ids=[r.what for r in RULES])
def test_each_rule_catches_what_it_is_for(rule: Rule):
    for example in rule.bad:
        assert rule.pattern.search(example), f"{rule.what}: should catch {example!r}"
    for example in rule.good:
        assert not rule.pattern.search(example), f"{rule.what}: should leave {example!r} alone"


def test_the_scan_reads_the_scenarios_the_tests_and_the_bench():
    rels = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert "molecule/cluster/tests/test_cluster.py" in rels
    assert "molecule/shared/create.yml" in rels
    assert "bench/cluster_bench.py" in rels
    assert "scripts/test.sh" in rels
    assert "tests/integration/plugins/test_swarm_members_module.py" in rels  # held to every rule but one
    assert not any(r.startswith("tests/unit/lab/") for r in rels)


def test_nothing_outside_the_lab_package_works_out_lab_facts_by_itself():
    problems = [
        f"{path.relative_to(ROOT)}:{line}: computes {rule.what} ({text!r}); use {rule.use}"
        for path in scanned_files()
        for line, rule, text in violations(path.read_text(errors="replace"), kind(path), exempt_from(path) or NONE)
    ]
    assert not problems, "\n".join(problems)


def test_every_scenario_and_the_bench_use_the_lab_package():
    users = [*sorted(ROOT.glob("molecule/*/tests/test_*.py")), ROOT / "bench" / "cluster_bench.py"]
    assert len(users) > 5
    missing = [str(p.relative_to(ROOT)) for p in users if "picluster_lab" not in p.read_text()]
    assert not missing, f"these reach the lab without the lab package: {missing}"
