"""Execution inputs and flow outputs: parsing, validation and Kestra 1.x messages for every type."""
from __future__ import annotations

import base64
import struct
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from kestra_nb.engine.inputs import (
    ENCRYPTED_STRING_TYPE, SECRET_KEY_ENV, EncryptionError, coerce_output, decrypt_secret, decrypted_inputs,
    encrypt_secret, parse_typed, resolve_inputs,
)
from kestra_nb.errors import InputValidationError
from kestra_nb.model.flow import DependsOn, Input, Output

KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()   # Kestra: a base64-encoded 32-byte key


def inp(id: str, type: str = "STRING", **kw: Any) -> Input:
    props = kw.pop("props", {})
    return Input(id=id, type=type, props=props, **kw)


def ok(type_: str, value: Any, **props: Any) -> Any:
    return resolve_inputs([inp("x", type_, props=props)], {"x": value})["x"]


def errors_of(inputs: list[Input], provided: dict[str, Any], **kw: Any) -> list[str]:
    with pytest.raises(InputValidationError) as info:
        resolve_inputs(inputs, provided, **kw)
    return info.value.errors


def bad(type_: str, value: Any, **props: Any) -> str:
    errors = errors_of([inp("x", type_, props=props)], {"x": value})
    assert len(errors) == 1, errors
    return errors[0]


def cause(reason: str, id: str = "x") -> str:
    return f"Invalid value for input `{id}`. Cause: {reason}"


def failed(java_message: str, id: str = "x") -> str:
    return cause(f"errors:\n```\n{java_message}\n```", id)


# ----------------------------------------------------------------------------------------- STRING


def test_string_as_is_and_validator_full_match() -> None:
    assert ok("STRING", "myString") == "myString"
    assert ok("STRING", "") == ""
    assert ok("STRING", "A123", validator="^[A-Z]\\d+$") == "A123"
    assert ok("STRING", "A123", validator="[A-Z]\\d+") == "A123"
    # Pattern.matches: the whole value must match, not a part of it
    assert bad("STRING", "xA123", validator="[A-Z]\\d+") == cause("it must match the pattern `[A-Z]\\d+`")
    assert bad("STRING", "foo", validator="^[A-Z]\\d+$") == cause("it must match the pattern `^[A-Z]\\d+$`")


def test_string_from_native_values_is_printed_like_java() -> None:
    assert ok("STRING", 5) == "5"
    assert ok("STRING", True) == "true"
    assert ok("STRING", 1.0) == "1.0"
    assert ok("STRING", ["a", 1]) == "[a, 1]"


# -------------------------------------------------------------------------------------------- INT


@pytest.mark.parametrize("value, expected", [("42", 42), ("-7", -7), ("+3", 3), (42, 42),
                                             ("2147483647", 2147483647), ("-2147483648", -2147483648)])
def test_int_good(value: Any, expected: int) -> None:
    result = ok("INT", value)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value, shown", [("42.0", "42.0"), ("abc", "abc"), ("", ""), (" 42", " 42"),
                                          ("2147483648", "2147483648"), (3000000000, "3000000000"),
                                          (4.0, "4.0"), (True, "true"), ("4_2", "4_2")])
def test_int_bad(value: Any, shown: str) -> None:
    assert bad("INT", value) == cause(f'For input string: "{shown}"')


def test_int_min_max() -> None:
    assert ok("INT", "12", min=10, max=20) == 12
    assert ok("INT", "10", min=10, max=20) == 10
    assert bad("INT", "9", min=10, max=20) == cause("it must be more than `10`")
    assert bad("INT", "21", min=10, max=20) == cause("it must be less than `20`")
    assert errors_of([inp("age", "INT", props={"max": 64})], {"age": "65"}) == [
        "Invalid value for input `age`. Cause: it must be less than `64`"]


# ------------------------------------------------------------------------------------------ FLOAT


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_float_is_a_java_32_bit_float() -> None:
    # the float32 Kestra holds, shown (JSON, templates) as Float.toString prints it
    assert ok("FLOAT", "42.42") == 42.42
    assert ok("FLOAT", "0.1") == 0.1
    assert ok("FLOAT", "3.14159265358979") == 3.1415927          # precision lost, as in Kestra
    assert ok("FLOAT", "16777217") == 16777216.0                  # beyond 2^24 integers are not exact
    assert ok("FLOAT", "0.123456789") == 0.12345679
    for text in ("0.1", "42.42", "3.14159265358979", "1e-7", "123456.789"):
        value = ok("FLOAT", text)
        assert f32(value) == f32(float(text))                    # same float32 as Java's Float.valueOf


def test_float_java_grammar_and_native_values() -> None:
    assert ok("FLOAT", "1") == 1.0
    assert ok("FLOAT", " 2.5 ") == 2.5                            # Float.valueOf trims
    assert ok("FLOAT", "2.5f") == 2.5
    assert ok("FLOAT", "1e3") == 1000.0
    assert ok("FLOAT", ".5") == 0.5
    assert ok("FLOAT", "0x1p3") == 8.0
    assert ok("FLOAT", 2) == 2.0
    assert ok("FLOAT", 0.1) == 0.1
    assert ok("FLOAT", "1e39") == float("inf")


@pytest.mark.parametrize("value, reason", [("abc", 'For input string: "abc"'), ("1,5", 'For input string: "1,5"'),
                                           ("", "empty String"), ("  ", "empty String"),
                                           (True, 'For input string: "true"')])
def test_float_bad(value: Any, reason: str) -> None:
    assert bad("FLOAT", value) == cause(reason)


def test_float_min_max_printed_as_java_floats() -> None:
    assert ok("FLOAT", "0.42", min=0.1, max=0.5) == 0.42
    assert bad("FLOAT", "0.01", min=0.1, max=0.5) == cause("it must be more than `0.1`")
    assert bad("FLOAT", "1.01", min=0.1, max=0.5) == cause("it must be less than `0.5`")
    assert bad("FLOAT", "0", min=1) == cause("it must be more than `1.0`")
    assert bad("FLOAT", "2e7", max=10000000) == cause("it must be less than `1.0E7`")


# ---------------------------------------------------------------------------------------- BOOLEAN


@pytest.mark.parametrize("type_", ["BOOLEAN", "BOOL"])
@pytest.mark.parametrize("value, expected", [("true", True), ("TRUE", True), ("True", True), ("false", False),
                                             ("yes", False), ("1", False), ("", False), ("garbage", False),
                                             (True, True), (False, False), (1, False)])
def test_boolean_never_fails(type_: str, value: Any, expected: bool) -> None:
    assert ok(type_, value) is expected


# --------------------------------------------------------------------------------------- DATETIME


def test_datetime_good_values_are_stored_as_instants() -> None:
    assert ok("DATETIME", "2019-10-06T18:27:49Z") == "2019-10-06T18:27:49Z"
    assert ok("DATETIME", "2042-04-02T04:20:42.000Z") == "2042-04-02T04:20:42Z"
    assert ok("DATETIME", "2042-04-02T04:20:42.120Z") == "2042-04-02T04:20:42.120Z"
    assert ok("DATETIME", "2024-01-01T02:00:00+02:00") == "2024-01-01T00:00:00Z"
    assert ok("DATETIME", "2024-01-01t00:00:00z") == "2024-01-01T00:00:00Z"
    assert ok("DATETIME", datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize("text, message", [
    ("2024-01-01T00:00:00", "Text '2024-01-01T00:00:00' could not be parsed at index 19"),   # no zone
    ("2024-01-01T00:00", "Text '2024-01-01T00:00' could not be parsed at index 16"),
    ("2024-01-01", "Text '2024-01-01' could not be parsed at index 10"),
    ("2024-01-01 00:00:00Z", "Text '2024-01-01 00:00:00Z' could not be parsed at index 10"),
    ("2024-01-01T00:00:00+0100", "Text '2024-01-01T00:00:00+0100' could not be parsed at index 19"),
    ("2024-13-01T00:00:00Z", "Text '2024-13-01T00:00:00Z' could not be parsed at index 0"),
    ("2024-01-01T00:00:00Zz", "Text '2024-01-01T00:00:00Zz' could not be parsed, unparsed text found at index 20"),
    ("now", "Text 'now' could not be parsed at index 0"),
])
def test_datetime_bad(text: str, message: str) -> None:
    assert bad("DATETIME", text) == failed(message)


def test_datetime_after_before() -> None:
    props = {"after": "2023-01-01T00:00:00Z", "before": "2023-12-31T23:59:59Z"}
    assert ok("DATETIME", "2023-01-01T00:00:10Z", **props) == "2023-01-01T00:00:10Z"
    assert bad("DATETIME", "2022-01-01T00:00:00Z", **props) == cause("it must be after `2023-01-01T00:00:00Z`")
    assert bad("DATETIME", "2024-01-01T00:00:00Z", **props) == cause("it must be before `2023-12-31T23:59:59Z`")
    # YAML may hand over a datetime for an unquoted timestamp
    after = datetime(2023, 1, 1, tzinfo=timezone.utc)
    assert bad("DATETIME", "2022-01-01T00:00:00Z", after=after) == cause("it must be after `2023-01-01T00:00:00Z`")


# ------------------------------------------------------------------------------------ DATE, TIME


def test_date() -> None:
    assert ok("DATE", "2019-10-06") == "2019-10-06"
    assert ok("DATE", date(2042, 12, 3)) == "2042-12-03"
    assert bad("DATE", "2024-1-1") == failed("Text '2024-1-1' could not be parsed at index 5")
    assert bad("DATE", "2023-02-29") == failed(
        "Text '2023-02-29' could not be parsed: Invalid date 'February 29' as '2023' is not a leap year")
    assert bad("DATE", "2024-04-31") == failed("Text '2024-04-31' could not be parsed: Invalid date 'APRIL 31'")
    assert bad("DATE", "2024-13-01") == failed(
        "Text '2024-13-01' could not be parsed: Invalid value for MonthOfYear (valid values 1 - 12): 13")
    assert bad("DATE", "2024-01-01T00:00:00Z") == failed(
        "Text '2024-01-01T00:00:00Z' could not be parsed, unparsed text found at index 10")
    props = {"after": "2023-01-01", "before": "2023-12-31"}
    assert ok("DATE", "2023-01-02", **props) == "2023-01-02"
    assert bad("DATE", "2022-01-01", **props) == cause("it must be after `2023-01-01`")
    assert bad("DATE", "2024-01-01", **props) == cause("it must be before `2023-12-31`")
    assert bad("DATE", "2022-01-01", after=date(2023, 1, 1)) == cause("it must be after `2023-01-01`")


def test_time() -> None:
    assert ok("TIME", "18:27:49") == "18:27:49"
    assert ok("TIME", "10:15") == "10:15:00"
    assert ok("TIME", "10:15:30.5") == "10:15:30.5"
    assert ok("TIME", time(9, 5, 1)) == "09:05:01"
    assert bad("TIME", "25:00") == failed(
        "Text '25:00' could not be parsed: Invalid value for HourOfDay (valid values 0 - 23): 25")
    assert bad("TIME", "10h15") == failed("Text '10h15' could not be parsed at index 2")
    assert bad("TIME", "10:15:3") == failed("Text '10:15:3' could not be parsed, unparsed text found at index 5")
    # LocalTime.toString drops zero seconds: Kestra prints `01:00`
    props = {"after": "01:00", "before": "11:59:59"}
    assert ok("TIME", "11:27:49", **props) == "11:27:49"
    assert bad("TIME", "00:00:01", **props) == cause("it must be after `01:00`")
    assert bad("TIME", "14:00:00", **props) == cause("it must be before `11:59:59`")


# --------------------------------------------------------------------------------------- DURATION


def test_duration() -> None:
    assert ok("DURATION", "PT5M6S") == "PT5M6S"
    assert ok("DURATION", "P1D") == "PT24H"
    assert ok("DURATION", "pt0.5s") == "PT0.5S"
    assert ok("DURATION", timedelta(minutes=1, seconds=2.5)) == "PT1M2.5S"
    assert bad("DURATION", "5 minutes") == failed("Text cannot be parsed to a Duration")
    assert bad("DURATION", " PT5M") == failed("Text cannot be parsed to a Duration")
    props = {"min": "PT10S", "max": "PT20S"}
    assert ok("DURATION", "PT15S", **props) == "PT15S"
    # DurationInput's messages are capitalised
    assert bad("DURATION", "PT1S", **props) == cause("It must be more than `PT10S`")
    assert bad("DURATION", "PT30S", **props) == cause("It must be less than `PT20S`")


# ------------------------------------------------------------------------------------ JSON, YAML


def test_json() -> None:
    assert ok("JSON", '{"a": "b"}') == {"a": "b"}
    assert ok("JSON", "{}") == {}
    assert ok("JSON", "[1, 2]") == [1, 2]
    assert ok("JSON", "42") == 42
    assert ok("JSON", {"people": [{"first": "Ada"}]}) == {"people": [{"first": "Ada"}]}
    assert ok("JSON", [1]) == [1]
    assert ok("JSON", '{"a": 1} trailing') == {"a": 1}               # Jackson ignores trailing tokens


def test_json_bad() -> None:
    assert bad("JSON", "abc").startswith(failed(
        "Unrecognized token 'abc': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or "
        "'false')")[:-4])
    message = bad("JSON", "{a: 1}")
    assert message.startswith(cause("errors:\n```\nUnexpected character ('a' (code 97)): was expecting double-quote"))
    assert message.endswith("\n```")
    assert bad("JSON", '{"a": 1') .startswith(cause("errors:\n```\nUnexpected end-of-input"))
    assert bad("JSON", "").startswith(cause("errors:\n```\nNo content to map due to end-of-input"))


def test_yaml() -> None:
    text = "some: property\nalist:\n- of\n- values"
    assert ok("YAML", text) == {"some": "property", "alist": ["of", "values"]}
    assert ok("YAML", {"a": [1]}) == {"a": [1]}
    # Jackson's YAML keeps timestamps as text and reads only true/false as booleans
    assert ok("YAML", "when: 2024-01-01\nflag: yes\nok: true") == {"when": "2024-01-01", "flag": "yes", "ok": True}
    message = bad("YAML", "a: b: c")
    assert message.startswith(cause("errors:\n```\nmapping values are not allowed here"))
    assert "'reader', line 1, column 5" in message


# ---------------------------------------------------------------------------------- URI and EMAIL


def test_uri() -> None:
    assert ok("URI", "https://www.google.com") == "https://www.google.com"
    assert ok("URI", "ftp://files.example.com/path/file.csv?x=1") == "ftp://files.example.com/path/file.csv?x=1"
    # the scheme is `[a-z]+`: no digits
    assert bad("URI", "s3://bucket.example.com/file.csv") == cause("Invalid URI format.")
    assert bad("URI", "http:/bla") == cause("Invalid URI format.", "x")
    # Kestra's pattern wants a dotted host
    assert bad("URI", "http://localhost:8080") == cause("Invalid URI format.")
    assert bad("URI", "HTTP://example.com") == cause("Invalid URI format.")


def test_email() -> None:
    assert ok("EMAIL", "ada.lovelace+x@example.com") == "ada.lovelace+x@example.com"
    assert ok("EMAIL", "") == ""                                      # the pattern starts with ^$|
    assert ok("EMAIL", "o’brien@example.ie") == "o’brien@example.ie"
    for value in ("not-an-email", "a@b@c", "a b@example.com", "a@exa_mple.com", "a@example.com\n"):
        assert bad("EMAIL", value) == cause("The input must be a valid email")


# ------------------------------------------------------------------------------ SELECT and ENUM


@pytest.mark.parametrize("type_", ["SELECT", "ENUM"])
def test_select_values(type_: str) -> None:
    assert ok(type_, "ENUM_VALUE", values=["ENUM_VALUE", "OTHER_ONE"]) == "ENUM_VALUE"
    assert bad(type_, "INVALID", values=["ENUM_VALUE", "OTHER_ONE"]) == (
        "Invalid value for input `x`. Cause: it must match the values `[ENUM_VALUE, OTHER_ONE]`")


def test_select_custom_value_label_options_and_optional() -> None:
    assert ok("SELECT", "mine", values=["A"], allowCustomValue=True) == "mine"
    assert ok("SELECT", "123", values=[{"label": "Production", "value": "123"}, "B"]) == "123"
    assert bad("SELECT", "Production", values=[{"label": "Production", "value": "123"}, "B"]) == cause(
        "it must match the values `[123, B]`")
    assert ok("SELECT", 1, values=[1, 2]) == "1"
    # SelectInput.validate only checks a required input
    result = resolve_inputs([inp("x", "SELECT", required=False, props={"values": ["A"]})], {"x": "Z"})
    assert result == {"x": "Z"}


def test_select_expression_rendered_with_the_context() -> None:
    inputs = [inp("x", "SELECT", props={"expression": "{{ vars.envs }}"})]
    variables = {"vars": {"envs": ["dev", "prod", None]}}
    assert resolve_inputs(inputs, {"x": "prod"}, variables=variables) == {"x": "prod"}
    assert errors_of(inputs, {"x": "qa"}, variables=variables) == [cause("it must match the values `[dev, prod]`")]
    assert errors_of(inputs, {"x": "qa"}, variables={"vars": {"envs": "dev"}}) == [
        cause("Invalid expression result. Expected a list of values")]
    [message] = errors_of(inputs, {"x": "qa"}, variables={"vars": {}})
    assert message.startswith(cause("Cannot render 'expression'. Cause: "))


def test_select_auto_select_first() -> None:
    inputs = [inp("x", "SELECT", props={"values": ["A", "B"], "autoSelectFirst": True}),
              inp("y", "MULTISELECT", props={"values": ["A", "B"], "autoSelectFirst": True})]
    assert resolve_inputs(inputs, {}) == {"x": "A", "y": ["A"]}


# -------------------------------------------------------------------------------------- MULTISELECT


def test_multiselect() -> None:
    props = {"values": ["A", "B", "C"]}
    assert ok("MULTISELECT", '["A", "C"]', **props) == ["A", "C"]
    assert ok("MULTISELECT", ["B"], **props) == ["B"]
    assert ok("MULTISELECT", ["X"], allowCustomValue=True, **props) == ["X"]
    assert ok("MULTISELECT", ["A"], options=["A", "B"]) == ["A"]
    assert errors_of([inp("multi", "MULTISELECT", props=props)], {"multi": ["F", "A", "H", "F"]}) == [
        "Invalid value for input `multi`. Cause: value `F` doesn't match the values `[A, B, C]`",
        "Invalid value for input `multi`. Cause: value `H` doesn't match the values `[A, B, C]`",
    ]
    assert errors_of([inp("multi", "MULTISELECT", props={"values": ["A", "B", "C"], "options": ["A"]})],
                     {"multi": ["F", "H"]}) == [
        "Invalid value for input `multi`. Cause: you can't define both `values` and `options`",
        "Invalid value for input `multi`. Cause: value `F` doesn't match the values `[A, B, C]`",
        "Invalid value for input `multi`. Cause: value `H` doesn't match the values `[A, B, C]`",
    ]
    assert bad("MULTISELECT", "A", **props).startswith(failed("Unrecognized token 'A'")[:-4])


def test_multiselect_expression_values() -> None:
    inputs = [inp("x", "MULTISELECT", props={"expression": "{{ ['a', 'b'] }}"})]
    assert resolve_inputs(inputs, {"x": '["b"]'}) == {"x": ["b"]}
    assert errors_of([inp("x", "MULTISELECT", props={"expression": "{{ 'a' }}"})], {"x": '["b"]'}) == [
        cause("Invalid expression result. Expected a list of strings")]


# ------------------------------------------------------------------------------------------ ARRAY


def test_array_items_parsed_as_item_type() -> None:
    assert ok("ARRAY", "[1, 2, 3]", itemType="INT") == [1, 2, 3]
    assert ok("ARRAY", [1, "2"], itemType="INT") == [1, 2]
    assert ok("ARRAY", '["2024-01-01T00:00:00Z"]', itemType="DATETIME") == ["2024-01-01T00:00:00Z"]
    assert ok("ARRAY", "[1, 2]", itemType="STRING") == ["1", "2"]
    assert ok("ARRAY", "[0.1]", itemType="FLOAT") == [0.1]
    assert ok("ARRAY", "[]", itemType="INT") == []
    assert bad("ARRAY", '["s1", "s2"]', itemType="INT") == cause("Unable to parse array element as `INT` on `s1`")
    assert bad("ARRAY", "[1.5]", itemType="INT") == cause("Unable to parse array element as `INT` on `1.5`")
    assert bad("ARRAY", '[{"a": 1}]', itemType="INT") == cause("Unable to parse array element as `INT` on `{a=1}`")
    assert bad("ARRAY", "[null]", itemType="STRING") == cause("Unable to parse array element as `STRING` on `null`")


def test_array_text_must_be_a_json_array() -> None:
    assert bad("ARRAY", '{"a": 1}', itemType="INT").startswith(failed(
        "Cannot deserialize value of type `java.util.ArrayList<java.lang.Object>` from Object value "
        "(token `JsonToken.START_OBJECT`)")[:-4])
    assert bad("ARRAY", "1,2", itemType="INT").startswith(cause("errors:\n```\n"))
    assert bad("ARRAY", 5, itemType="INT") == failed(
        "class java.lang.Integer cannot be cast to class java.lang.String (java.lang.Integer and java.lang.String "
        "are in module java.base of loader 'bootstrap')")


# ------------------------------------------------------------------------------------------- FILE


def test_file_takes_storage_uris() -> None:
    for uri in ("kestra:///io/kestra/tests/inputs/executions/x/inputs/file/data.csv", "nsfile:///file.txt",
                "file:///tmp/data.csv"):
        assert ok("FILE", uri) == uri
    message = bad("FILE", "/tmp/data.csv")
    assert message.startswith(cause("FILE inputs take a `kestra://` URI"))
    assert "multipart" in message
    assert bad("FILE", "kestra:///a/b.txt", allowedFileExtensions=[".csv"]) == cause(
        "File type not allowed. Accepted extensions: .csv")
    assert ok("FILE", "kestra:///a/B.CSV", allowedFileExtensions=[".csv"]) == "kestra:///a/B.CSV"


# ----------------------------------------------------------------------------------------- SECRET


def test_secret_is_encrypted_and_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    value = ok("SECRET", "p4ss w0rd")
    assert value != "p4ss w0rd"
    raw = base64.b64decode(value)
    assert len(raw) == 12 + len(b"p4ss w0rd") + 16            # IV, ciphertext, GCM tag
    assert decrypt_secret(value) == "p4ss w0rd"
    assert encrypt_secret("p4ss w0rd") != encrypt_secret("p4ss w0rd")   # random IV
    assert encrypt_secret("") == ""                                    # as Kestra's EncryptionService


def test_secret_decrypts_a_value_encrypted_by_kestra_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    iv = bytes(range(12))
    java_like = base64.b64encode(iv + AESGCM(base64.b64decode(KEY)).encrypt(iv, b"secret", None)).decode()
    assert decrypt_secret(java_like) == "secret"


def test_secret_validator_checks_the_clear_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    assert decrypt_secret(ok("SECRET", "abc123", validator="[a-z]+\\d+")) == "abc123"
    assert bad("SECRET", "nope", validator="[a-z]+\\d+") == cause("it must match the pattern `[a-z]+\\d+`")


def test_secret_without_key_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    message = bad("SECRET", "p4ss")
    assert message.startswith(cause("Unable to use a `SECRET` input/output as encryption is not configured"))
    assert SECRET_KEY_ENV in message
    with pytest.raises(EncryptionError):
        encrypt_secret("x")


def test_secret_with_a_bad_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, base64.b64encode(b"short").decode())
    assert "Invalid AES key length: 5 bytes" in bad("SECRET", "p4ss")
    monkeypatch.setenv(SECRET_KEY_ENV, "not base64 !")
    assert SECRET_KEY_ENV in bad("SECRET", "p4ss")


def test_decrypt_with_the_wrong_key_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    value = encrypt_secret("secret")
    monkeypatch.setenv(SECRET_KEY_ENV, base64.b64encode(b"x" * 32).decode())
    with pytest.raises(EncryptionError, match="wrong key"):
        decrypt_secret(value)


def test_secret_in_clear_for_dependent_templates_and_decrypted_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    inputs = [inp("nested.key", "SECRET"), inp("echo", defaults="{{ inputs.nested.key }}!")]
    result = resolve_inputs(inputs, {"nested.key": "pass"})
    assert result["echo"] == "pass!"
    assert result["nested"]["key"] != "pass"
    clear = decrypted_inputs(inputs, result)
    assert clear == {"nested": {"key": "pass"}, "echo": "pass!"}
    assert result["nested"]["key"] != "pass"                  # the execution's inputs are left encrypted


# -------------------------------------------------------------------------- required, defaults, nesting


def test_missing_required_and_optional_null() -> None:
    assert errors_of([inp("name")], {}) == ["Missing required input:name"]
    assert errors_of([inp("name")], {"name": None}) == ["Missing required input:name"]
    result = resolve_inputs([inp("bool", "BOOLEAN", required=False)], {})
    assert result == {"bool": None} and "bool" in result


def test_defaults_typed_and_rendered() -> None:
    inputs = [
        inp("n", "INT", defaults=5),
        inp("s", defaults="hello"),
        inp("when", "DATETIME", defaults="2013-08-09T14:19:00Z"),
        inp("other", "INT", defaults="{{ inputs.n + 1 }}"),
        inp("greeting", defaults="{{ inputs.s }} {{ vars.who }}"),
        inp("tags", "ARRAY", defaults=["a", "{{ vars.who }}"], props={"itemType": "STRING"}),
        inp("cfg", "JSON", defaults={"k": 1}),
    ]
    result = resolve_inputs(inputs, {"s": "hi"}, variables={"vars": {"who": "world"}})
    assert result == {"n": 5, "s": "hi", "when": "2013-08-09T14:19:00Z", "other": 6, "greeting": "hi world",
                      "tags": ["a", "world"], "cfg": {"k": 1}}
    # a provided value wins over the default, and the default expression sees it
    assert resolve_inputs(inputs[:4], {"n": "41"})["other"] == 42


def test_expression_default_from_a_native_value() -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    result = resolve_inputs([inp("at", "DATETIME", defaults="{{ started }}")], {}, variables={"started": when})
    assert result == {"at": "2024-05-01T12:30:00Z"}


def test_invalid_default_is_reported_on_the_input() -> None:
    assert errors_of([inp("n", "INT", defaults="many")], {}) == [cause('For input string: "many"', "n")]
    [message] = errors_of([inp("n", "INT", defaults="{{ inputs.nope }}")], {})
    assert message.startswith(cause("Unable to find `nope`", "n"))


def test_dotted_ids_nest() -> None:
    inputs = [inp("nested.string"), inp("nested.more.int", "INT"), inp("nested.bool", "BOOLEAN"), inp("top")]
    provided = {"nested.string": "a string", "nested.more.int": "123", "nested.bool": "true", "top": "t"}
    assert resolve_inputs(inputs, provided) == {
        "nested": {"string": "a string", "more": {"int": 123}, "bool": True}, "top": "t"}
    # the nested form of a Python call is accepted too
    assert resolve_inputs(inputs, {"nested": {"string": "s", "more": {"int": 1}, "bool": False}, "top": "t"}) == {
        "nested": {"string": "s", "more": {"int": 1}, "bool": False}, "top": "t"}


def test_undeclared_inputs_are_ignored() -> None:
    assert resolve_inputs([inp("a")], {"a": "x", "b": "y", "nested.c": 1}) == {"a": "x"}


def test_all_errors_are_reported_at_once() -> None:
    inputs = [inp("name"), inp("age", "INT", props={"max": 64}), inp("when", "DATETIME"), inp("ok", "BOOLEAN"),
              inp("uri", "URI")]
    with pytest.raises(InputValidationError) as info:
        resolve_inputs(inputs, {"age": "65", "when": "2024-01-01T00:00:00", "ok": "x", "uri": "nope"})
    assert info.value.errors == [
        "Missing required input:name",
        "Invalid value for input `age`. Cause: it must be less than `64`",
        failed("Text '2024-01-01T00:00:00' could not be parsed at index 19", "when"),
        "Invalid value for input `uri`. Cause: Invalid URI format.",
    ]
    assert str(info.value) == "\n".join(info.value.errors)


def test_native_python_values() -> None:
    inputs = [inp("n", "INT"), inp("f", "FLOAT"), inp("b", "BOOLEAN"),
              inp("tags", "ARRAY", props={"itemType": "STRING"}), inp("cfg", "JSON"), inp("at", "DATETIME"), inp("d", "DATE"), inp("t", "TIME"), inp("dur", "DURATION"),
              inp("ms", "MULTISELECT", props={"values": ["a", "b"]}), inp("y", "YAML")]
    result = resolve_inputs(inputs, {
        "n": 5, "f": 0.5, "b": True, "tags": ["a"], "cfg": {"a": [1]},
        "at": datetime(2024, 1, 1, tzinfo=timezone.utc), "d": date(2024, 2, 29), "t": time(8, 0),
        "dur": timedelta(seconds=90), "ms": ("a", "b"), "y": [1, {"k": "v"}]})
    assert result == {"n": 5, "f": 0.5, "b": True, "tags": ["a"], "cfg": {"a": [1]}, "at": "2024-01-01T00:00:00Z",
                      "d": "2024-02-29", "t": "08:00:00", "dur": "PT1M30S", "ms": ["a", "b"],
                      "y": [1, {"k": "v"}]}


# ------------------------------------------------------------------------------------------ dependsOn


def test_depends_on_condition_enables_and_disables() -> None:
    inputs = [
        inp("kind", "SELECT", props={"values": ["cloud", "local"]}),
        inp("region", depends_on=DependsOn(inputs=["kind"], condition="{{ inputs.kind == 'cloud' }}"),
            props={"validator": "[a-z]+-[0-9]"}),
    ]
    assert resolve_inputs(inputs, {"kind": "cloud", "region": "eu-1"}) == {"kind": "cloud", "region": "eu-1"}
    # disabled: absent from the result and not validated (not even required)
    assert resolve_inputs(inputs, {"kind": "local", "region": "???"}) == {"kind": "local"}
    assert resolve_inputs(inputs, {"kind": "local"}) == {"kind": "local"}
    assert errors_of(inputs, {"kind": "cloud"}) == ["Missing required input:region"]


def test_depends_on_a_disabled_input_disables() -> None:
    inputs = [
        inp("a", "BOOLEAN"),
        inp("b", depends_on=DependsOn(inputs=["a"], condition="{{ inputs.a }}")),
        inp("c", depends_on=DependsOn(inputs=["b"])),
    ]
    assert resolve_inputs(inputs, {"a": "false", "b": "x", "c": "y"}) == {"a": False}
    assert resolve_inputs(inputs, {"a": "true", "b": "x", "c": "y"}) == {"a": True, "b": "x", "c": "y"}


def test_depends_on_resolves_a_later_input_first() -> None:
    inputs = [
        inp("label", defaults="env={{ inputs.env }}", depends_on=DependsOn(inputs=["env"])),
        inp("env", defaults="dev"),
    ]
    assert resolve_inputs(inputs, {}) == {"env": "dev", "label": "env=dev"}


def test_depends_on_condition_must_be_boolean_true() -> None:
    def with_condition(condition: str) -> dict[str, Any]:
        return resolve_inputs([inp("a"), inp("b", required=False, depends_on=DependsOn(["a"], condition))],
                              {"a": "x", "b": "y"})

    assert with_condition("{{ true }}") == {"a": "x", "b": "y"}
    assert with_condition("true") == {"a": "x"}                 # a plain string is not boolean true
    assert with_condition("{{ 'true' }}") == {"a": "x"}
    assert with_condition("{{ inputs.missing }}") == {"a": "x"}   # a failing condition disables (Kestra drops it)


def test_unknown_dependencies_and_cycles_are_ignored() -> None:
    inputs = [inp("a", depends_on=DependsOn(["b", "ghost"])), inp("b", depends_on=DependsOn(["a"]))]
    assert resolve_inputs(inputs, {"a": "1", "b": "2"}) == {"a": "1", "b": "2"}


# ----------------------------------------------------------------------------------- parse_typed


def test_parse_typed_public_api() -> None:
    assert parse_typed("INT", "42", {}, "n") == 42
    assert parse_typed("int", "42", {}, "n") == 42
    with pytest.raises(InputValidationError) as info:
        parse_typed("INT", "x", {"min": 1}, "n")
    assert info.value.errors == ['Invalid value for input `n`. Cause: For input string: "x"']
    with pytest.raises(InputValidationError, match="Missing required input:n"):
        parse_typed("INT", None, {}, "n")
    with pytest.raises(InputValidationError, match="unsupported type `TABLE`"):
        parse_typed("TABLE", "x", {}, "n")


# -------------------------------------------------------------------------------------- outputs


def out(id: str, type_: str, required: bool = True) -> Output:
    return Output(id=id, type=type_, value=None, required=required)


def test_coerce_output_types() -> None:
    assert coerce_output(out("n", "INT"), "42") == 42
    assert coerce_output(out("n", "INT"), 42) == 42
    assert coerce_output(out("j", "JSON"), '{"a": [1, 2]}') == {"a": [1, 2]}
    assert coerce_output(out("j", "JSON"), {"a": 1}) == {"a": 1}
    assert coerce_output(out("s", "STRING"), "text") == "text"
    assert coerce_output(out("s", "STRING"), 3) == "3"
    assert coerce_output(out("b", "BOOLEAN"), "TRUE") is True
    assert coerce_output(out("f", "FILE"), "kestra:///ns/flow/executions/x/out.csv") == (
        "kestra:///ns/flow/executions/x/out.csv")
    assert coerce_output(out("s", "STRING", required=False), None) is None


def test_coerce_output_failures() -> None:
    with pytest.raises(InputValidationError) as info:
        coerce_output(out("n", "INT"), "forty-two")
    assert str(info.value) == 'Invalid value for output `n`. Cause: For input string: "forty-two"'
    with pytest.raises(InputValidationError) as info:
        coerce_output(out("j", "JSON"), "{oops")
    assert str(info.value).startswith("Invalid value for output `j`. Cause: errors:\n```\nUnexpected character")
    with pytest.raises(InputValidationError, match="Invalid value for output `s`. Cause: the value is null"):
        coerce_output(out("s", "STRING"), None)
    with pytest.raises(InputValidationError, match="Invalid value for output `f`. Cause: FILE inputs take"):
        coerce_output(out("f", "FILE"), "/tmp/x")


def test_secret_output_is_an_encrypted_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    value = coerce_output(out("pw", "SECRET"), "hunter2")
    assert value["type"] == ENCRYPTED_STRING_TYPE == "io.kestra.datatype:aes_encrypted"
    assert decrypt_secret(value["value"]) == "hunter2"
    monkeypatch.delenv(SECRET_KEY_ENV)
    with pytest.raises(InputValidationError, match="Invalid value for output `pw`. Cause: Unable to use a `SECRET`"):
        coerce_output(out("pw", "SECRET"), "hunter2")


# ------------------------------------------------------------------------------------------ speed


def test_three_string_inputs_resolve_fast() -> None:
    import timeit

    inputs = [inp("a"), inp("b", required=False), inp("c", defaults="z")]
    provided = {"a": "x", "b": "y"}
    assert resolve_inputs(inputs, provided) == {"a": "x", "b": "y", "c": "z"}
    per_call = min(timeit.repeat(lambda: resolve_inputs(inputs, provided), number=2000, repeat=5)) / 2000
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} µs per call"


def test_robustness_of_odd_declarations() -> None:
    assert bad("INT", "5", min="ten") == cause("invalid `min` property: `ten`")
    assert ok("FLOAT", 10 ** 400) == float("inf")
    assert resolve_inputs([inp("n", "int"), inp("s", "select", props={"values": ["a"]})], {"n": "1", "s": "a"}) == {
        "n": 1, "s": "a"}


def test_string_validator_is_a_java_regex():
    """Kestra validators are Java patterns: \\p{Alpha} and friends must work."""
    from kestra_nb.engine.inputs import parse_typed

    assert parse_typed("STRING", "abc", {"validator": r"\p{Alpha}+"}, "word") == "abc"
    with pytest.raises(InputValidationError, match=r"Invalid value for input `word`. Cause: it must match the pattern"):
        parse_typed("STRING", "ab1", {"validator": r"\p{Alpha}+"}, "word")
