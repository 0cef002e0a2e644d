"""kestrapy 1.0.10, the openapi-generator SDK with strict pydantic models: every response must validate."""
import time

from common import (
    APPROVAL,
    INPUTS,
    NAME,
    NS,
    PASSWORD,
    SEED,
    SLEEPY,
    TENANT,
    TERMINAL,
    URL,
    USER,
    state_of,
)
from kestrapy import Configuration, KestraClient
from kestrapy.exceptions import ApiException
from kestrapy.models.query_filter import QueryFilter

c = KestraClient(Configuration(host=URL, username=USER, password=PASSWORD))
T = TENANT

# ---- flows (strict FlowWithSource / PagedResultsFlow)
flow = c.flows.create_flow(tenant=T, body=SEED)
assert flow.id == "myflow" and flow.revision == 1 and flow.disabled is False and flow.deleted is False
try:
    c.flows.create_flow(tenant=T, body=SEED)
    raise AssertionError("a second create must fail")
except ApiException as exc:
    assert exc.status in (409, 422), exc.status
updated = c.flows.update_flow(namespace=NS, id="myflow", tenant=T, body=SEED.replace("hello from kestra", "again"))
assert updated.revision == 2
for source in (INPUTS, APPROVAL, SLEEPY):
    c.flows.create_flow(tenant=T, body=source)
got = c.flows.flow(namespace=NS, id="inputs", source=True, allow_deleted=False, tenant=T)
assert got.source == INPUTS and [i.id for i in got.inputs] == ["name", "count", "flag", "doc"]
page = c.flows.search_flows(page=1, size=10, tenant=T)
assert page.total == 4 and {f.id for f in page.results} == {"myflow", "inputs", "approval", "sleepy"}

# ---- execute with wait (strict ExecutionControllerExecutionResponse)
ex = c.executions.create_execution(namespace=NS, id="myflow", wait=True, tenant=T)
assert state_of(ex) == "SUCCESS" and ex.outputs == {"mydata": "again"}, ex
assert ex.task_run_list[0].outputs == {"value": "again"}
got = c.executions.execution(execution_id=ex.id, tenant=T)
assert got.id == ex.id and got.flow_revision == 2

# ---- inputs (form data and a file)
ex = c.executions.create_execution(namespace=NS, id="inputs", wait=True, tenant=T, labels=["team:data"],
                                   additional_form_datas={"name": NAME, "count": 7},
                                   additional_files={"doc": ("data.csv", b"a,b\n")})
assert state_of(ex) == "SUCCESS" and ex.outputs == {"greeting": f"{NAME}/7/false"}, ex.outputs
assert ex.inputs["doc"].endswith("/inputs/doc/data.csv")

# ---- execute then poll, and search with filters
started = c.executions.create_execution(namespace=NS, id="myflow", wait=False, tenant=T)
assert state_of(started) == "CREATED"
deadline = time.monotonic() + 10
while state_of(c.executions.execution(execution_id=started.id, tenant=T)) not in TERMINAL:
    assert time.monotonic() < deadline
    time.sleep(0.01)
found = c.executions.search_executions(page=1, size=10, tenant=T, sort=["state.startDate:desc"], filters=[
    QueryFilter(field="FLOW_ID", operation="EQUALS", value={"value": "myflow"})])
assert found.total == 2 and found.results[0].id == started.id, found
everything = c.executions.search_executions(page=1, size=50, tenant=T)
assert everything.total == 3

# ---- follow (raw dicts)
events = list(c.executions.follow_execution(execution_id=started.id, tenant=T))
assert events[-1]["state"]["current"] == "SUCCESS"

# ---- kill
sleepy = c.executions.create_execution(namespace=NS, id="sleepy", wait=False, tenant=T)
for event in c.executions.follow_execution(execution_id=sleepy.id, tenant=T):
    if event.get("state", {}).get("current") == "RUNNING":
        break
c.executions.kill_execution(execution_id=sleepy.id, is_on_kill_cascade=True, tenant=T)
events = list(c.executions.follow_execution(execution_id=sleepy.id, tenant=T))
assert events[-1]["state"]["current"] == "KILLED"

# ---- resume with onResume inputs
paused = c.executions.create_execution(namespace=NS, id="approval", wait=False, tenant=T)
for event in c.executions.follow_execution(execution_id=paused.id, tenant=T):
    if event.get("state", {}).get("current") == "PAUSED":
        break
c.executions.resume_execution(execution_id=paused.id, tenant=T, additional_form_datas={"reason": "approuvé ✓"})
events = list(c.executions.follow_execution(execution_id=paused.id, tenant=T))
assert events[-1]["state"]["current"] == "SUCCESS" and events[-1]["outputs"] == {"reason": "approuvé ✓"}
final = c.executions.execution(execution_id=paused.id, tenant=T)   # strict parse of a resumed execution
assert state_of(final) == "SUCCESS"

# ---- KV
c.kv.set_key_value(namespace=NS, key="greeting", tenant=T, body="hello")
value = c.kv.key_value(namespace=NS, key="greeting", tenant=T)
assert value.type.value == "STRING" and value.value == "hello" and value.revision == 1
assert [e.key for e in c.kv.list_keys(namespace=NS, tenant=T)] == ["greeting"]
assert c.kv.delete_key_value(namespace=NS, key="greeting", tenant=T) is True

# ---- errors
try:
    c.executions.execution(execution_id="nope", tenant=T)
    raise AssertionError("404 expected")
except ApiException as exc:
    assert exc.status == 404
c.flows.delete_flow(namespace=NS, id="sleepy", tenant=T)
print("kestrapy 1.0.10: OK")
