"""A bearer token as each client sends it, against a server configured with `--token`: hand-written kestrapy
(`KestraClient(token=...)`) or generated kestrapy (`Configuration(access_token=...)`), and the `kestra`
library (`KESTRA_API_TOKEN`, which it prefers to basic auth)."""
import importlib.util
import os

from common import NS, SEED, TENANT, URL

import kestrapy

TOKEN = os.environ["KESTRA_TEST_TOKEN"]
T = TENANT
generated = importlib.util.find_spec("kestrapy.base_api") is None   # the hand-written SDKs ship base_api
if generated:
    from kestrapy import Configuration, KestraClient

    c = KestraClient(Configuration(host=URL, access_token=TOKEN))
    c.flows.create_flow(tenant=T, body=SEED)
    ex = c.executions.create_execution(namespace=NS, id="myflow", wait=True, tenant=T)
    assert ex.state.current == "SUCCESS", ex
    wrong = KestraClient(Configuration(host=URL, access_token="wrong-" + TOKEN))
    try:
        wrong.executions.create_execution(namespace=NS, id="myflow", wait=True, tenant=T)
        raise AssertionError("401 expected")
    except kestrapy.exceptions.UnauthorizedException:
        pass
else:
    from kestrapy import KestraClient

    c = KestraClient(host=URL, token=TOKEN)
    c.flows.create_flow(T, SEED)
    ex = c.executions.create_execution(T, NS, "myflow", wait=True)
    assert ex.state.current == "SUCCESS", ex
    try:
        KestraClient(host=URL, token="wrong-" + TOKEN).executions.create_execution(T, NS, "myflow", wait=True)
        raise AssertionError("401 expected")
    except Exception as exc:  # noqa: BLE001 - the SDK's own class for 401
        assert "401" in str(exc) or type(exc).__name__.startswith("Unauthorized"), exc
    from kestra import Flow

    os.environ["KESTRA_HOSTNAME"] = URL
    os.environ["KESTRA_API_TOKEN"] = TOKEN
    result = Flow(wait_for_completion=True, poll_interval=0.05, tenant=T).execute(NS, "myflow")
    assert result.status == "SUCCESS", result
print(f"bearer ({'generated' if generated else 'hand-written'} kestrapy): OK")
