"""Kestra's published Python clients (PyPI) drive our server unchanged: kestrapy 1.0.10 (generated, strict
pydantic), 1.3.1 and 2.0.3 (hand-written; 2.0 uses the /actions/ routes and the outputs API), and the
`kestra` library's Flow.execute with and without a tenant; each with a bearer token (`--token`) too."""
from __future__ import annotations

import pytest

from tests.clients.conftest import TOKEN, run_script


@pytest.mark.parametrize("name", ["kestrapy-1.3.1", "kestrapy-2.0.3"])
def test_kestrapy_hand_written(client_envs, kestra, name):
    run_script(client_envs[name], "kestrapy_hw.py", kestra)


def test_kestrapy_generated_strict(client_envs, kestra):
    run_script(client_envs["kestrapy-1.0.10"], "kestrapy_gen.py", kestra)


@pytest.mark.parametrize("tenant", ["main", ""], ids=["tenant", "tenant-less"])
def test_kestra_library_flow_execute(client_envs, kestra, tenant):
    run_script(client_envs["kestrapy-2.0.3"], "kestra_lib.py", kestra, KESTRA_TEST_TENANT=tenant)


@pytest.mark.parametrize("name", ["kestrapy-1.0.10", "kestrapy-2.0.3"])
def test_bearer_tokens_of_every_client(client_envs, token_kestra, name):
    run_script(client_envs[name], "bearer.py", token_kestra, KESTRA_TEST_TOKEN=TOKEN)
