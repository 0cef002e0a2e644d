"""storage.LocalFiles, storage.Reverse, storage.DeduplicateItems and storage.FilterItems, following Kestra's
LocalFilesTest, ReverseTest, DeduplicateItemsTest and FilterItemsTest (io.kestra.plugin.core.storage)."""
from __future__ import annotations

import io
import json
from typing import Any

import pytest

from kestra_nb.errors import FlowValidationError
from kestra_nb.model.execution import Level
from kestra_nb.tasks import files
from kestra_nb.tasks.ion import IonError, dumps as ion_dumps, loads as ion_loads


def flow(tasks: str) -> str:
    return f"id: files\nnamespace: company.team\ntasks:\n{tasks}"


def write(task_id: str, content: str, extension: str = ".ion") -> str:
    return (f"  - id: {task_id}\n    type: io.kestra.plugin.core.storage.Write\n    extension: {extension}\n"
            f"    content: {json.dumps(content)}\n")


def outputs(ex: Any, task_id: str) -> Any:
    return next(tr.outputs for tr in ex.task_run_list if tr.task_id == task_id)


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


def read(engine: Any, uri: str) -> str:
    return engine.store.storage.read_bytes(uri).decode()


def ion_rows(items: list[dict[str, Any]]) -> str:
    return "".join(ion_dumps(item) + "\n" for item in items)


# ------------------------------------------------------------------------------------------- LocalFiles

# follows io.kestra.plugin.core.storage.LocalFilesTest#run
def test_local_files_writes_inputs_and_stores_matching_outputs(engine: Any) -> None:
    ex = engine.run(flow(write("stored", "name: get.yml\n", ".yml") + """  - id: local
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs:
      hello-input.txt: Hello Input
      execution.txt: "{{ flow.id }}"
      application-test.yml: "{{ outputs.stored.uri }}"
    outputs:
      - hello-input.txt
  - id: all
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs:
      execution.txt: "{{ flow.id }}"
      application-test.yml: "{{ outputs.stored.uri }}"
    outputs: ["*"]
"""))
    assert ex.state == "SUCCESS", errors(engine, ex)
    uris = outputs(ex, "local")["uris"]
    assert list(uris) == ["hello-input.txt"]
    assert read(engine, uris["hello-input.txt"]) == "Hello Input"
    tr = next(t for t in ex.task_run_list if t.task_id == "local")
    assert uris["hello-input.txt"].startswith(f"kestra:///company/team/files/executions/{ex.id}/tasks/local/{tr.id}/")
    assert uris["hello-input.txt"].endswith("-hello-input.txt")  # Kestra's `<id>-<file name>`
    every = outputs(ex, "all")["uris"]
    assert sorted(every) == ["application-test.yml", "execution.txt"]
    assert read(engine, every["execution.txt"]) == "files"
    assert read(engine, every["application-test.yml"]) == "name: get.yml\n"


# follows io.kestra.plugin.core.storage.LocalFilesTest#recursive
def test_local_files_recursive_globs(engine: Any) -> None:
    ex = engine.run(flow(write("stored", "yaml: true\n", ".yml") + """  - id: local
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs: '{"test/hello-input.txt": "Hello Input", "test/sub/dir/2/execution.txt": "{{ flow.id }}",
              "test/sub/dir/3/application-test.yml": "{{ outputs.stored.uri }}", "other.txt": "no"}'
    outputs:
      - "test/**"
"""))
    assert ex.state == "SUCCESS", errors(engine, ex)
    uris = outputs(ex, "local")["uris"]
    assert sorted(uris) == ["test/hello-input.txt", "test/sub/dir/2/execution.txt",
                            "test/sub/dir/3/application-test.yml"]
    assert read(engine, uris["test/hello-input.txt"]) == "Hello Input"
    assert read(engine, uris["test/sub/dir/2/execution.txt"]) == "files"
    assert read(engine, uris["test/sub/dir/3/application-test.yml"]) == "yaml: true\n"


# follows io.kestra.plugin.core.storage.LocalFilesTest#failWithExistingInputFile (an undefined variable)
def test_local_files_undefined_variable_fails_naming_inputs(engine: Any) -> None:
    ex = engine.run(flow("  - id: local\n    type: io.kestra.plugin.core.storage.LocalFiles\n"
                         "    inputs:\n      hello-input.txt: Hello Input\n      execution.txt: '{{toto}}'\n"))
    assert ex.state == "FAILED"
    [message] = errors(engine, ex)
    assert "toto" in message and "property `inputs`" in message


@pytest.mark.parametrize("inputs, message", [
    ("{'../escape.txt': 'x'}", "Invalid `inputs`: invalid file name `../escape.txt`"),
    ("{'/abs.txt': 'x'}", "Invalid `inputs`: invalid file name `/abs.txt`"),
    ("{'a.txt': [1, 2]}", "Invalid `inputs.a.txt`: expected a text or a kestra:/// URI, found a list"),
    ("'{{ [1, 2] }}'", "Invalid `inputs`: expected a map of file names to contents"),
    ("{'a.txt': 'kestra:///company/team/missing.txt'}", "Invalid `inputs.a.txt`: cannot read"),
])
def test_local_files_bad_inputs_fail_clearly(engine: Any, inputs: str, message: str) -> None:
    ex = engine.run(flow(f"  - id: local\n    type: io.kestra.plugin.core.storage.LocalFiles\n    inputs: {inputs}\n"))
    assert ex.state == "FAILED"
    assert errors(engine, ex)[0].startswith(message), errors(engine, ex)


# ---------------------------------------------------------------------------------------------- Reverse

# follows io.kestra.plugin.core.storage.ReverseTest#run
def test_reverse(engine: Any) -> None:
    ex = engine.run(flow(write("w", "1\n2\n3\n", ".yml")
                         + '  - id: rev\n    type: io.kestra.plugin.core.storage.Reverse\n'
                           '    from: "{{ outputs.w.uri }}"\n'
                         + '  - id: semi\n    type: io.kestra.plugin.core.storage.Reverse\n'
                           '    from: "{{ outputs.w.uri }}"\n    separator: ";"\n'))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert outputs(ex, "rev")["uri"].endswith(".yml")
    assert read(engine, outputs(ex, "rev")["uri"]) == "3\n2\n1\n"
    assert read(engine, outputs(ex, "semi")["uri"]) == "3;2;1;"


def test_reverse_reads_backwards_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_CHUNK", 3)
    for data, lines in [(b"1\n2\n3\n", [b"3", b"2", b"1"]), (b"1\n2\n3", [b"3", b"2", b"1"]), (b"", []),
                        (b"a\r\nbb\r\ncc\rd\n\ne", [b"e", b"", b"d", b"cc", b"bb", b"a"]),
                        (b"abcdefgh\r\nxy", [b"xy", b"abcdefgh"]), (b"x\r\n\r\n", [b"", b"x"])]:
        assert list(files._reversed_lines(io.BytesIO(data), len(data))) == lines, data


def test_reverse_bad_input(engine: Any) -> None:
    ex = engine.run(flow("  - id: rev\n    type: io.kestra.plugin.core.storage.Reverse\n"
                         "    from: kestra:///company/team/none.txt\n"))
    assert errors(engine, ex) == ["Invalid `from`: file not found: kestra:///company/team/none.txt"]
    ex = engine.run(flow("  - id: rev\n    type: io.kestra.plugin.core.storage.Reverse\n    from: /etc/passwd\n"))
    assert errors(engine, ex)[0].startswith("Invalid `from`: Invalid internal storage URI")
    ex = engine.run(flow(write("w", "a\n") + '  - id: rev\n    type: io.kestra.plugin.core.storage.Reverse\n'
                                             '    from: "{{ outputs.w.uri }}"\n    charset: KLINGON\n'))
    assert errors(engine, ex) == ["Invalid `charset` `KLINGON`: unknown charset"]


# ------------------------------------------------------------------------------------- DeduplicateItems

DEDUP_VALUES = [("k1", "v1"), ("k2", "v1"), ("k3", "v1"), ("k1", "v2"), ("k2", "v2"), ("k2", None), ("k3", "v2"),
                ("k1", "v3")]


# follows io.kestra.plugin.core.storage.DeduplicateItemsTest#shouldDeduplicateFileGivenKeyExpression
def test_deduplicate_keeps_the_last_item_of_each_key(engine: Any) -> None:
    content = ion_rows([{"key": k, "value": v} for k, v in DEDUP_VALUES])
    ex = engine.run(flow(write("w", content) + '  - id: dedup\n    type: io.kestra.plugin.core.storage.DeduplicateItems\n'
                                               '    from: "{{ outputs.w.uri }}"\n    expr: " {{ key }} "\n'))
    assert ex.state == "SUCCESS", errors(engine, ex)
    out = outputs(ex, "dedup")
    assert (out["numKeys"], out["droppedItemsTotal"], out["processedItemsTotal"]) == (3, 5, 8)
    assert out["uri"].endswith(".ion")
    assert [ion_loads(line) for line in read(engine, out["uri"]).splitlines()] == [
        {"key": "k2", "value": None}, {"key": "k3", "value": "v2"}, {"key": "k1", "value": "v3"}]


# follows io.kestra.plugin.core.storage.DeduplicateItemsTest#shouldDeduplicateFileGivenKeyExpressionReturningArray
def test_deduplicate_with_a_composite_key(engine: Any) -> None:
    values = [("k1", "k1", "v1"), ("k2", "k2", "v1"), ("k3", "k3", "v1"), ("k1", "k1", "v2"), ("k2", "k2", None),
              ("k3", "k3", "v2"), ("k1", "k1", "v3")]
    content = ion_rows([{"key": k, "v1": a, "v2": b} for k, a, b in values])
    ex = engine.run(flow(write("w", content) + '  - id: dedup\n    type: io.kestra.plugin.core.storage.DeduplicateItems\n'
                                               '    from: "{{ outputs.w.uri }}"\n    expr: " {{ key }}-{{ v1 }}"\n'))
    assert ex.state == "SUCCESS", errors(engine, ex)
    out = outputs(ex, "dedup")
    assert (out["numKeys"], out["droppedItemsTotal"], out["processedItemsTotal"]) == (3, 4, 7)
    assert [ion_loads(line) for line in read(engine, out["uri"]).splitlines()] == [
        {"key": "k2", "v1": "k2", "v2": None}, {"key": "k3", "v1": "k3", "v2": "v2"},
        {"key": "k1", "v1": "k1", "v2": "v3"}]


def test_deduplicate_rejects_a_line_that_is_not_ion(engine: Any) -> None:
    ex = engine.run(flow(write("w", '{key:"a"}\n{key:\n') + '  - id: dedup\n'
                         '    type: io.kestra.plugin.core.storage.DeduplicateItems\n'
                         '    from: "{{ outputs.w.uri }}"\n    expr: "{{ key }}"\n'))
    assert ex.state == "FAILED"
    assert errors(engine, ex)[0].startswith("Invalid `from`: line 2 is not an Ion value")


# ------------------------------------------------------------------------------------------ FilterItems

VALID = ion_rows([{"key": f"k{i}", "value": i} for i in range(1, 5)])
INVALID = ion_rows([{"key": "k1", "value": 1}, {"key": "k2", "value": "dummy"}, {"key": "k3", "value": 3},
                    {"key": "k4", "value": 4}])


def filter_flow(content: str, condition: str, **props: str) -> str:
    extra = "".join(f"    {k}: {v}\n" for k, v in props.items())
    return flow(write("w", content) + '  - id: filter\n    type: io.kestra.plugin.core.storage.FilterItems\n'
                                      f'    from: "{{{{ outputs.w.uri }}}}"\n    filterCondition: {json.dumps(condition)}\n'
                + extra)


# follows io.kestra.plugin.core.storage.FilterItemsTest (every case but the failing one)
@pytest.mark.parametrize("content, condition, props, dropped, kept", [
    (VALID, " {{ value % 2 == 0 }} ", {"filterType": "INCLUDE"}, 2, [("k2", 2), ("k4", 4)]),   # ...ForInclude
    (VALID, " {{ value % 2 == 0 }} ", {"filterType": "EXCLUDE"}, 2, [("k1", 1), ("k3", 3)]),   # ...ForExclude
    (INVALID, " {{ value % 2 == 0 }}", {"errorOrNullBehavior": "INCLUDE"}, 2,
     [("k2", "dummy"), ("k4", 4)]),                                          # shouldFilterGivenInvalidRecordsForInclude
    (INVALID, " {{ value % 2 == 0 }}", {"errorOrNullBehavior": "EXCLUDE"}, 3, [("k4", 4)]),   # ...RecordsForExclude
    (VALID, "{{ value }}", {"errorOrNullBehavior": "FAIL"}, 0,
     [("k1", 1), ("k2", 2), ("k3", 3), ("k4", 4)]),                       # shouldFilterWithNotMatchGivenNonBooleanValue
])
def test_filter_items(engine: Any, content: str, condition: str, props: dict[str, str], dropped: int,
                      kept: list[tuple[str, Any]]) -> None:
    ex = engine.run(filter_flow(content, condition, **props))
    assert ex.state == "SUCCESS", errors(engine, ex)
    out = outputs(ex, "filter")
    assert (out["droppedItemsTotal"], out["processedItemsTotal"]) == (dropped, 4)
    assert [(r["key"], r["value"]) for r in map(ion_loads, read(engine, out["uri"]).splitlines())] == kept


# follows io.kestra.plugin.core.storage.FilterItemsTest#shouldThrowExceptionGivenInvalidRecordsForFail
def test_filter_items_fails_on_a_bad_item_by_default(engine: Any) -> None:
    ex = engine.run(filter_flow(INVALID, " {{ value % 2 == 0 }}"))
    assert ex.state == "FAILED"
    [message] = errors(engine, ex)
    assert "value % 2 == 0" in message and "property `filterCondition`" in message


# ------------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("task_yaml, message", [
    ("    type: io.kestra.plugin.core.storage.Reverse\n", "tasks[0].from: must not be null"),
    ("    type: io.kestra.plugin.core.storage.DeduplicateItems\n    from: kestra:///a/b.ion\n",
     "tasks[0].expr: must not be null"),
    ("    type: io.kestra.plugin.core.storage.FilterItems\n    from: kestra:///a/b.ion\n",
     "tasks[0].filterCondition: must not be null"),
    ("    type: io.kestra.plugin.core.storage.FilterItems\n    from: x\n    filterCondition: x\n    filterType: KEEP\n",
     "tasks[0].filterType: expected one of [INCLUDE, EXCLUDE]"),
    ("    type: io.kestra.plugin.core.storage.FilterItems\n    from: x\n    filterCondition: x\n"
     "    errorOrNullBehavior: IGNORE\n", "tasks[0].errorOrNullBehavior: expected one of [FAIL, INCLUDE, EXCLUDE]"),
    ("    type: io.kestra.plugin.core.storage.LocalFiles\n    outputs: out.txt\n", "tasks[0].outputs: expected a list"),
    ("    type: io.kestra.plugin.core.storage.LocalFiles\n    inputFiles: {a: b}\n",
     'tasks[0].inputFiles: Unrecognized field "inputFiles"'),
])
def test_bad_properties_are_validation_errors(engine: Any, task_yaml: str, message: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        engine.run(flow("  - id: t\n" + task_yaml))
    assert message in str(info.value)


def test_legacy_names_are_accepted(engine: Any) -> None:
    ex = engine.run(flow(write("w", "a\nb\n") + '  - id: rev\n    type: io.kestra.core.tasks.storages.Reverse\n'
                                                '    from: "{{ outputs.w.uri }}"\n'))
    assert ex.state == "SUCCESS"
    assert read(engine, outputs(ex, "rev")["uri"]) == "b\na\n"


# ------------------------------------------------------------------------------------------------ Ion

def test_ion_rows_read_and_write() -> None:
    text = ("{a:1, b:1.5, c:1.5e0, d:2007-02-23T12:14:33.079-08:00, e:null.int, f:[1,2,], g:ann::{x:'y z'},"
            " 'q f':\"\\u00e9\\n\", h:{{aGVsbG8=}}, j:-0x1F, k:'''ab''' '''cd''', n:-inf}")
    value = ion_loads(text)
    assert value["a"] == 1 and str(value["b"]) == "1.5" and value["c"] == 1.5
    assert value["d"] == "2007-02-23T12:14:33.079-08:00" and value["e"] is None and value["f"] == [1, 2]
    assert value["g"] == {"x": "y z"} and value["q f"] == "é\n" and value["h"] == b"hello"
    assert value["j"] == -31 and value["k"] == "abcd" and value["n"] == float("-inf")
    assert ion_loads(ion_dumps(value)) == value
    for bad in ("{a:}", "{a:1", '"x', "{a:1} 2", "{1:2}", "[" * 200 + "]" * 200):
        with pytest.raises(IonError):
            ion_loads(bad)
