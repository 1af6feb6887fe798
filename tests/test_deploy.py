"""The Kubernetes manifests parse, reference only settings that exist, and probe the ops port."""

from pathlib import Path

import yaml

from services.cli.settings import rows

K8S = Path(__file__).parent.parent / "deploy" / "k8s"


def documents() -> list[dict]:  # type: ignore[type-arg]
    return [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def test_every_configured_variable_is_a_real_setting() -> None:
    known = {variable for variable, *_ in rows()}
    for doc in documents():
        if doc.get("kind") in ("ConfigMap", "Secret"):
            data = doc.get("data") or doc.get("stringData") or {}
            assert set(data) <= known, set(data) - known


def test_every_service_runs_with_probes() -> None:
    deployments = [d for d in documents() if d["kind"] == "Deployment"]
    assert {d["spec"]["template"]["spec"]["containers"][0]["args"][1] for d in deployments} == {
        "ingest", "evaluator", "notifier", "portal"}
    for d in deployments:
        container = d["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
