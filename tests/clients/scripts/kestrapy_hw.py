"""kestrapy 1.3.x / 2.0.x (the hand-written SDK) against kestra_nb: flows, executions, follow, kill, resume,
logs, KV. 2.0 sends per-execution actions to /executions/{id}/actions/… and reads outputs from /outputs."""
import importlib.metadata
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
from kestrapy import KestraClient
from kestrapy.exceptions import (
    ConflictException,
    NotFoundException,
    UnprocessableEntityException,
)

VERSION = importlib.metadata.version("kestrapy")
V2 = VERSION.startswith("2.")
c = KestraClient(host=URL, username=USER, password=PASSWORD)
T = TENANT

# ---- flows: create, conflict, update, get, search
flow = c.flows.create_flow(T, SEED)
assert flow.id == "myflow" and flow.namespace == NS and flow.revision == 1, flow
try:
    c.flows.create_flow(T, SEED)
    raise AssertionError("a second create must fail")
except (UnprocessableEntityException, ConflictException) as exc:
    assert exc.status in (409, 422)
updated = c.flows.update_flow(NS, "myflow", T, SEED.replace("hello from kestra", "hello again"))
assert updated.revision == 2, updated
same = c.flows.update_flow(NS, "myflow", T, SEED.replace("hello from kestra", "hello again"))
assert same.revision == 2
got = c.flows.flow(NS, "myflow", T, source=True)
assert got.revision == 2 and "hello again" in got.source
for source in (INPUTS, APPROVAL, SLEEPY):
    c.flows.create_flow(T, source)
found = c.flows.search_flows(T, page=1, size=10, filters=[{"field": "NAMESPACE", "operation": "EQUALS", "value": NS}])
total = found.total if hasattr(found, "total") else found["total"]
assert total == 4, found

# ---- execute with wait
ex = c.executions.create_execution(T, NS, "myflow", wait=True)
assert state_of(ex) == "SUCCESS"
outputs = ex.additional_properties.get("outputs") if V2 else ex.outputs
assert outputs == {"mydata": "hello again"}, outputs
if V2:
    assert c.outputs.execution_outputs(ex.id, T) == {"mydata": "hello again"}
again = c.executions.execution(ex.id, T)
assert again.id == ex.id and state_of(again) == "SUCCESS"

# ---- inputs: non-ASCII text, JSON-encoded values, a file
ex = c.executions.create_execution(T, NS, "inputs", wait=True, labels=["team:data", "url:http://x/y"],
                                   inputs={"name": NAME, "count": 5, "flag": True, "doc": b"file-bytes\n"})
assert state_of(ex) == "SUCCESS", ex
inputs = ex.inputs if not V2 else (ex.inputs if getattr(ex, "inputs", None) else ex.additional_properties["inputs"])
assert inputs["name"] == NAME and inputs["count"] == 5 and inputs["flag"] is True, inputs
assert inputs["doc"].startswith("kestra:///company/team/inputs/executions/") and inputs["doc"].endswith("/doc/doc")
labels = {(label.key, label.value) for label in ex.labels}
assert ("team", "data") in labels and ("url", "http://x/y") in labels
try:
    c.executions.create_execution(T, NS, "inputs", wait=True, inputs={"count": "x"})
    raise AssertionError("an invalid input must fail")
except UnprocessableEntityException as exc:
    assert "count" in exc.body

# ---- execute then poll
started = c.executions.create_execution(T, NS, "myflow")
assert state_of(started) == "CREATED"
deadline = time.monotonic() + 10
while state_of(c.executions.execution(started.id, T)) not in TERMINAL and time.monotonic() < deadline:
    time.sleep(0.01)
assert state_of(c.executions.execution(started.id, T)) == "SUCCESS"
search = c.executions.search_executions(T, page=1, size=10, sort=["state.startDate:desc"],
                                        filters=[{"field": "FLOW_ID", "operation": "EQUALS", "value": "myflow"}])
assert search["total"] == 2 and search["results"][0]["id"] == started.id, search

# ---- follow (SSE) until the end; the server closes the stream
states = [state_of(e) for e in c.executions.follow_execution(started.id, T) if getattr(e, "state", None)]
assert states and states[-1] == "SUCCESS", states

# ---- kill a running execution
sleepy = c.executions.create_execution(T, NS, "sleepy")
for event in c.executions.follow_execution(sleepy.id, T):
    if getattr(event, "state", None) and state_of(event) == "RUNNING":
        break
killed = c.executions.kill_execution(sleepy.id, T)
if V2:
    assert killed.id == sleepy.id and state_of(killed) in ("KILLING", "KILLED")
final = [state_of(e) for e in c.executions.follow_execution(sleepy.id, T) if getattr(e, "state", None)]
assert final[-1] == "KILLED", final

# ---- resume a paused execution with onResume inputs
paused = c.executions.create_execution(T, NS, "approval")
for event in c.executions.follow_execution(paused.id, T):
    if getattr(event, "state", None) and state_of(event) == "PAUSED":
        break
resumed = c.executions.resume_execution(paused.id, T, inputs={"reason": "approuvé ✓"})
if V2:
    assert resumed.id == paused.id
final = list(c.executions.follow_execution(paused.id, T))[-1]
assert state_of(final) == "SUCCESS"
final = c.executions.execution(paused.id, T)
outputs = final.additional_properties.get("outputs") if V2 else final.outputs
assert outputs == {"reason": "approuvé ✓"}, outputs
try:
    c.executions.resume_execution(paused.id, T)
    raise AssertionError("resuming a finished execution must fail")
except ConflictException:
    pass

# ---- logs
ex = c.executions.create_execution(T, NS, "inputs", wait=True, inputs={"name": NAME})
logs = c.logs.list_logs_from_execution(ex.id, T)
assert any(entry.message == f"Hello {NAME} x1" for entry in logs), logs
text = c.logs.download_logs_from_execution(ex.id, T)
assert f"INFO Hello {NAME} x1" in text, text
try:
    c.executions.execution("nope", T)
    raise AssertionError("404 expected")
except NotFoundException:
    pass

# ---- KV
c.kv.set_key_value(NS, "greeting", T, "hello")
c.kv.set_key_value(NS, "config", T, '{"a": 1}')
value = c.kv.key_value(NS, "greeting", T)
assert getattr(value.type, "value", value.type) == "STRING" and value.value == "hello", value
assert c.kv.key_value(NS, "config", T).value == {"a": 1}
keys = {entry.key for entry in c.kv.list_keys_with_inheritance(NS, T)}
assert keys == {"greeting", "config"}, keys
assert c.kv.delete_key_value(NS, "greeting", T) is True
assert c.kv.delete_key_value(NS, "greeting", T) is False

# ---- delete the flow
c.flows.delete_flow(NS, "sleepy", T)
try:
    c.flows.flow(NS, "sleepy", T)
    raise AssertionError("deleted")
except NotFoundException:
    pass
print(f"kestrapy {VERSION}: OK")
