"""notebooks/scripts-and-files.ipynb: python/shell Script and Commands tasks with `::{"outputs": …}::` lines,
the `kestra` library, `env` and `inputFiles`; storage.Write, `outputFiles` and FILE outputs read back in Python
from the kernel's store; a script exiting with 3 failing its execution (--allow-failure)."""
from __future__ import annotations

import nbformat

from tests.jupyter.test_notebooks import cell_by_start, stdout, view_of


def _outputs(view: dict, task: str) -> dict:
    return next(t for t in view["task_outputs"] if t["task"] == task)["outputs"]


def check(nb: nbformat.NotebookNode) -> None:
    py, _ = view_of(nb, cell_by_start(nb, "%%flow --out py"))
    assert py["summary"]["state"] == "SUCCESS" and py["summary"]["flowId"] == "scripts_python"
    assert py["outputs"] == {"total": 60, "mean": 20.0}
    assert any(log["task"] == "compute" and log["message"] == "3 orders" for log in py["logs"])
    assert not any(log["message"].startswith("::") for log in py["logs"])   # the protocol line is no log
    assert stdout(cell_by_start(nb, "for run in py.task_run_list")) == (
        "compute {'vars': {'total': 60, 'count': 3}, 'exitCode': 0}\n"
        "average {'vars': {'mean': 20.0}, 'exitCode': 0}\n"
        "{'total': 60, 'mean': 20.0}\n")

    commands, _ = view_of(nb, cell_by_start(nb, "%%flow\nid: scripts_commands"))
    assert commands["summary"]["state"] == "SUCCESS"
    assert _outputs(commands, "greet") == {"vars": {"who": "notebook"}, "exitCode": 0}
    messages = [(log["task"], log["message"]) for log in commands["logs"]]
    assert ("greet", "hello notebook") in messages
    assert ("run_file", "python 3 got ['notebook', '42']") in messages

    files, html = view_of(nb, cell_by_start(nb, "%%flow --out files"))
    assert files["summary"]["state"] == "SUCCESS" and files["summary"]["flowId"] == "scripts_files"
    assert [(r["task"], r["state"]) for r in files["runs"]] == [
        ("write", "SUCCESS"), ("report", "SUCCESS"), ("show", "SUCCESS")]
    report = _outputs(files, "report")
    assert list(report["outputFiles"]) == ["summary.json"]
    assert files["outputs"]["summary"] == report["outputFiles"]["summary.json"]
    assert files["outputs"]["orders"] == _outputs(files, "write")["uri"]
    assert files["outputs"]["orders"].startswith("kestra:///company/team/scripts_files/executions/")
    assert files["outputs"]["orders"].endswith(".csv")
    assert any(log["task"] == "show" and log["message"] == '{"regions": 3, "best": "south"}'
               for log in files["logs"])
    assert "<strong>Files</strong>" in html and ">summary.json</a>" in html and "/file?path=kestra%3A%2F%2F%2F" in html

    cell = cell_by_start(nb, "import csv")
    assert stdout(cell) == "{'regions': 3, 'best': 'south'}\n"
    (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert result.data["text/plain"] == ("[{'region': 'north', 'amount': '10'},\n"
                                         " {'region': 'south', 'amount': '30'},\n"
                                         " {'region': 'east', 'amount': '20'}]")

    failed, _ = view_of(nb, cell_by_start(nb, "%%flow --allow-failure --out failed"))
    assert failed["summary"]["state"] == "FAILED"
    levels = [(log["level"], log["message"]) for log in failed["logs"]]
    assert ("INFO", "checking the export") in levels and ("ERROR", "export.csv is missing") in levels
    assert ("ERROR", "Command failed with exit code 3") in levels
    assert stdout(cell_by_start(nb, "check = next(")) == "FAILED FAILED {'vars': {}, 'exitCode': 3}\n"
