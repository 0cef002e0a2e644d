"""Flows and settings shared by the client scripts (run with a client's own interpreter, not ours)."""
import os

URL = os.environ["KESTRA_URL"]
USER = os.environ["KESTRA_TEST_USER"]
PASSWORD = os.environ["KESTRA_TEST_PASSWORD"]
TENANT = "main"
NS = "company.team"
TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}
NAME = "Wörld ✓ 漢字"

SEED = """id: myflow
namespace: company.team
tasks:
  - id: mytask
    type: io.kestra.plugin.core.debug.Return
    format: hello from kestra

outputs:
  - id: mydata
    type: STRING
    value: "{{ outputs.mytask.value }}"
    description: return some data
"""

INPUTS = """id: inputs
namespace: company.team
inputs:
  - id: name
    type: STRING
    defaults: nobody
  - id: count
    type: INT
    defaults: 1
  - id: flag
    type: BOOLEAN
    defaults: false
  - id: doc
    type: FILE
    required: false
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }} x{{ inputs.count }}"
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}/{{ inputs.count }}/{{ inputs.flag }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.ret.value }}"
"""

APPROVAL = """id: approval
namespace: company.team
tasks:
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.gate.onResume.reason }}"
outputs:
  - id: reason
    type: STRING
    value: "{{ outputs.after.value }}"
"""

SLEEPY = """id: sleepy
namespace: company.team
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""


def state_of(execution):
    """`state.current` of a model (an enum or a string) or of a dict."""
    state = execution["state"] if isinstance(execution, dict) else execution.state
    current = state["current"] if isinstance(state, dict) else state.current
    return getattr(current, "value", current)
