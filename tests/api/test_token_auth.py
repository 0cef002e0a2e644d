"""Bearer tokens: the standalone server accepts a configured one (alone or beside Basic auth) without weakening
its Host and Origin checks; the client, the CLI and the magic send one (`--token`, KESTRA_API_TOKEN)."""
from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import httpx
import pytest

from kestra_nb.api.auth import BasicAuth, Credentials, check_token
from kestra_nb.cli import main
from kestra_nb.client import AuthenticationError, KestraClient
from kestra_nb.errors import IllegalArgumentError
from kestra_nb.server import Server
from tests.api.conftest import SEED, YAML, serving
from tests.api.test_server import PASSWORD, USER

TOKEN = "kestra-nb.test-token_0123456789"


@pytest.fixture
def token_server(tmp_path) -> Iterator[Server]:
    with serving(tmp_path / "home", auth=Credentials(token=TOKEN)) as srv:
        yield srv


@pytest.fixture
def both_server(tmp_path) -> Iterator[Server]:
    with serving(tmp_path / "home", auth=Credentials(BasicAuth(USER, PASSWORD), TOKEN)) as srv:
        yield srv


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_server_accepts_its_bearer_token_and_nothing_else(token_server):
    with httpx.Client(base_url=token_server.url) as c:
        r = c.get("/api/v1/main/flows/search")
        assert r.status_code == 401 and r.content == b"" and r.headers["www-authenticate"] == 'Basic realm="Kestra"'
        assert c.get("/api/v1/main/flows/search", headers=bearer(TOKEN + "x")).status_code == 401
        assert c.get("/api/v1/main/flows/search", headers=bearer(TOKEN[:-1])).status_code == 401
        assert c.get("/api/v1/main/flows/search", headers={"Authorization": TOKEN}).status_code == 401
        # not a cookie (a browser would send it by itself), not Basic when only a token is configured
        assert c.get("/api/v1/main/flows/search", headers={"Cookie": f"BASIC_AUTH={TOKEN}"}).status_code == 401
        assert c.get("/api/v1/main/flows/search", auth=(USER, PASSWORD)).status_code == 401
        assert c.get("/ping").text == "pong"
        assert c.get("/api/v1/main/flows/search", headers=bearer()).status_code == 200
        assert c.get("/api/v1/main/flows/search", headers={"Authorization": f"bearer  {TOKEN}"}).status_code == 200
        r = c.post("/api/v1/main/flows", content=SEED.encode(), headers={**YAML, **bearer()})
        assert r.status_code == 200, r.text
        openapi = c.get("/api/v1/openapi.json", headers=bearer()).json()
        assert openapi["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_a_token_does_not_lift_the_host_and_origin_checks(token_server):
    with httpx.Client(base_url=token_server.url) as c:
        r = c.post("/api/v1/main/flows", content=SEED.encode(),
                   headers={**YAML, **bearer(), "Origin": "https://attacker.example"})
        assert r.status_code == 403 and "cross-origin" in r.json()["message"]
        r = c.get("/api/v1/main/flows/search", headers={**bearer(), "Host": "attacker.example"})
        assert r.status_code == 403
        assert c.get("/api/v1/main/flows/company.team/myflow", headers=bearer()).status_code == 404  # not stored


def test_with_basic_and_a_token_either_passes(both_server):
    with httpx.Client(base_url=both_server.url) as c:
        assert c.get("/api/v1/main/flows/search").status_code == 401
        assert c.get("/api/v1/main/flows/search", headers=bearer()).status_code == 200
        assert c.get("/api/v1/main/flows/search", auth=(USER, PASSWORD)).status_code == 200
        cookie = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert c.get("/api/v1/main/flows/search", headers={"Cookie": f"BASIC_AUTH={cookie}"}).status_code == 200
        assert c.get("/api/v1/main/flows/search", headers=bearer("wrong-token-0123456789")).status_code == 401
        schemes = c.get("/api/v1/openapi.json", headers=bearer()).json()["components"]["securitySchemes"]
        assert set(schemes) == {"basicAuth", "bearerAuth"}


def test_token_configuration_is_checked(tmp_path, capsys, monkeypatch):
    assert check_token(TOKEN) == TOKEN
    for bad, why in (("short", "16 to 4096 characters"), ("x" * 4097, "16 to 4096 characters"),
                     ("has a space in it, 0123456789", "found ' '"), ("line\nbreak-0123456789", "found '\\n'")):
        with pytest.raises(ValueError, match=re.escape(why)):
            check_token(bad)
    monkeypatch.delenv("KESTRA_NB_BASIC_AUTH", raising=False)
    monkeypatch.delenv("KESTRA_NB_API_TOKEN", raising=False)
    assert Credentials.configure() is None
    assert Credentials.configure(env={"KESTRA_NB_API_TOKEN": TOKEN}) == Credentials(None, TOKEN)
    assert Credentials.configure(f"{USER}:{PASSWORD}", env={}).security == "basic"
    assert main(["server", "--token", "short", "--port", "0", "--home", str(tmp_path)]) == 2
    assert "the API token must be 16 to 4096 characters long, not 5" in capsys.readouterr().err
    # a token is credentials enough to listen beyond loopback
    Server(tmp_path, host="0.0.0.0", port=0, auth=Credentials(token=TOKEN))


def test_server_process_with_a_token_from_the_environment(tmp_path, monkeypatch):
    import signal

    from tests.api.test_server import start_process

    monkeypatch.delenv("KESTRA_NB_BASIC_AUTH", raising=False)
    monkeypatch.setenv("KESTRA_NB_API_TOKEN", TOKEN)
    proc, url = start_process(tmp_path / "home")
    try:
        assert httpx.get(f"{url}/api/v1/flows/search").status_code == 401
        assert httpx.get(f"{url}/api/v1/flows/search", headers=bearer()).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_client_cli_and_environment_send_the_token(token_server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KESTRA_API_TOKEN", raising=False)
    monkeypatch.delenv("KESTRA_NB_BASIC_AUTH", raising=False)
    with KestraClient(token_server.url, token=TOKEN) as c:
        assert c.deploy(SEED)["revision"] == 1
        assert c.execute("company.team", "myflow")["outputs"] == {"mydata": "hello from kestra"}
    with KestraClient(token_server.url, token="not-the-token-0123") as c, pytest.raises(AuthenticationError):
        c.flow("company.team", "myflow")
    for bad in ("", "two words", "line\nbreak"):
        with pytest.raises(IllegalArgumentError, match="one word of printable characters"):
            KestraClient(token_server.url, token=bad)
    flow = tmp_path / "myflow.yml"
    flow.write_text(SEED)
    assert main(["deploy", str(flow), "--server", token_server.url]) == 1
    assert "Authentication failed (401)" in capsys.readouterr().err
    assert main(["deploy", str(flow), "--server", token_server.url, "--token", TOKEN]) == 0
    assert main(["run", str(flow), "--server", token_server.url, "--token", "bad token"]) == 1
    assert "one word of printable characters" in capsys.readouterr().err
    monkeypatch.setenv("KESTRA_API_TOKEN", TOKEN)
    monkeypatch.setenv("KESTRA_NB_BASIC_AUTH", "someone:else")   # the token wins, as in Kestra's clients
    assert main(["run", str(flow), "--server", token_server.url]) == 0
    assert "SUCCESS" in capsys.readouterr().out
    with KestraClient.from_env(token_server.url) as c:
        assert c.flow("company.team", "myflow")["id"] == "myflow"
    with pytest.raises(IllegalArgumentError, match="USER:PASSWORD"):
        KestraClient.from_env(token_server.url, basic_auth="nocolon")


def test_a_tenant_other_than_main_is_named_in_the_error(server, tmp_path, capsys):
    with KestraClient(server.url, tenant="acme") as c, pytest.raises(IllegalArgumentError, match="'acme'"):
        c.deploy(SEED)
    flow = tmp_path / "myflow.yml"
    flow.write_text(SEED)
    assert main(["deploy", str(flow), "--server", server.url, "--tenant", "acme"]) == 1
    assert "Tenant 'acme' does not exist" in capsys.readouterr().err
