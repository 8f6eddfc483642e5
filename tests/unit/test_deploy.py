"""The team-server files (Dockerfile, compose.yaml, deploy/nginx.conf) are valid and agree.

`docker compose config` needs the compose plugin, which this machine lacks; this does what it
checks without an engine: YAML parse, `${VAR}` interpolation (a missing required variable is
an error), then validation against the Compose Specification's JSON schema
(tests/fixtures/compose-spec.json, compose-spec/compose-spec at 170098ba, Apache-2.0, see
compose-spec.LICENSE). Where `docker compose` exists it runs too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV = {"POSTGRES_PASSWORD": "pw", "COOKIE_SECRET": "cs", "WAFER_API_KEY": "wfr_x"}
HEALTH = "/_stcore/health"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` on every string."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        got = env.get(name)
        if op and op.endswith("?") and not got:
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        if op and op.endswith("-") and not got:
            return arg
        return got or ""

    return _VAR.sub(sub, value)


def load_compose(env: dict[str, str]) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "compose.yaml").read_text())  # merges `<<: *app`
    doc = interpolate(raw, env)
    schema = json.loads((ROOT / "tests/fixtures/compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    return doc


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    doc = load_compose(ENV)
    assert set(doc["services"]) == {"app1", "app2", "postgres", "proxy"}


def test_compose_refuses_to_start_without_its_secrets() -> None:
    for missing in ("POSTGRES_PASSWORD", "COOKIE_SECRET"):
        with pytest.raises(ValueError, match=missing):
            load_compose({k: v for k, v in ENV.items() if k != missing})


def test_two_replicas_share_one_postgres_behind_the_proxy() -> None:
    svc = load_compose(ENV)["services"]
    apps = [svc["app1"], svc["app2"]]
    for app in apps:
        env = app["environment"]
        assert env["WAFER_PLAYGROUND_DB"] == "postgresql://wafer:pw@postgres:5432/wafer"
        assert env["STREAMLIT_SERVER_COOKIE_SECRET"] == "cs"  # the same on both
        assert env["WAFER_ALLOWED_ENDPOINTS"] == "wafer"
        assert any(HEALTH in part for part in app["healthcheck"]["test"])
        assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert app["build"] == "."
    assert svc["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pw"
    assert "pg_isready" in " ".join(svc["postgres"]["healthcheck"]["test"])
    proxy = svc["proxy"]
    assert {k: v["condition"] for k, v in proxy["depends_on"].items()} == {
        "app1": "service_healthy", "app2": "service_healthy"}
    assert any(HEALTH in part for part in proxy["healthcheck"]["test"])
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]


def test_nginx_is_sticky_and_upgrades_websockets() -> None:
    conf = (ROOT / "deploy/nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    upstream = re.search(r"upstream\s+(\w+)\s*\{([^}]*)\}", code)
    assert upstream is not None
    body = upstream.group(2)
    assert re.search(r"^\s*ip_hash;", body, re.M)  # sticky sessions
    assert re.findall(r"server\s+(\S+?)[\s;]", body) == ["app1:8501", "app2:8501"]
    assert f"proxy_pass http://{upstream.group(1)};" in code
    assert "proxy_http_version 1.1;" in code
    assert "proxy_set_header Upgrade $http_upgrade;" in code
    assert "proxy_set_header Connection $connection_upgrade;" in code
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{\s*default upgrade;", code)
    assert code.count("{") == code.count("}")


def test_dockerfile_serves_the_port_and_health_the_proxy_expects() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "EXPOSE 8501" in text and "--server.port=8501" in text
    assert "--server.address=0.0.0.0" in text
    health = next(line for line in text.splitlines() if "CMD" in line and HEALTH in line)
    assert "127.0.0.1:8501" + HEALTH in health
    assert "uv sync --frozen --no-dev" in text and "\nUSER app\n" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "*.db", ".streamlit/secrets.toml"} <= set(ignored)


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker is not installed")
def test_docker_compose_config_when_the_plugin_is_there() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("docker has no compose plugin here; the schema check above stands in")
    done = subprocess.run(["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config",
                           "-q"], capture_output=True, text=True, env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr
