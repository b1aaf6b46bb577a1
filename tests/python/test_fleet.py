"""What docs/fleet.md ships for a fleet: the Prometheus rules parse and their unit tests pass (promtool), the
Grafana dashboard's queries parse as PromQL, and every metric they name is one ttmemd serves."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request

import ttmem

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "deploy", "prometheus", "ttmem-rules.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "ttmem-dashboard.json")


def promtool(*args, cwd=None):
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: scripts/install-deps.sh installs Debian's prometheus package"
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=cwd)


def served_families():
    with ttmem.Server(args=["--http", "0"]) as server:
        port = int(re.search(r"HTTP on http://127\.0\.0\.1:(\d+)/", server.log).group(1))
        with ttmem.open_mesh_device("n150") as mesh:
            b = mesh.allocate("DRAM", 4096)
            assert ttmem.flush()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            del b
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def dashboard_exprs():
    with open(DASHBOARD) as f:
        board = json.load(f)
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    assert exprs and all(p["title"] for p in board["panels"])
    return exprs


def test_the_rules_parse_and_their_unit_tests_pass():
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "ttmem-rules.test.yml", cwd=os.path.dirname(RULES))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_dashboards_queries_are_promql():
    # promtool parses PromQL in rule files: each query becomes a recording rule, Grafana's variables
    # replaced by what they stand for.
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        m = re.fullmatch(r"label_values\((.*), (\w+)\)", expr)
        promql = m.group(1) if m else expr
        promql = promql.replace("$host", ".*").replace("$device", ".*").replace("$type", ".*")
        rules.append({"record": f"dashboard:query_{i}", "expr": promql})
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)  # JSON is YAML
        f.flush()
        checked = promtool("check", "rules", f.name)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_metric_the_rules_and_dashboard_name_is_served():
    with open(RULES) as f:
        rules_text = f.read()
    recorded = set(re.findall(r"record: (\S+)", rules_text))
    named = set(re.findall(r"\bttmem[_:][a-z_:]+", rules_text + "\n".join(dashboard_exprs())))
    missing = named - served_families() - recorded
    assert not missing, f"named but not served: {sorted(missing)}"
