"""The engine's settings from the home's `config.yml`, laid out as Kestra's `application.yml`.

Only `kestra.variables.globals` is read today: a map that every expression sees as `{{ globals }}`
(Kestra's global variables). The file is optional; a malformed one is a ConfigurationError that names
the key, raised when the engine starts, so a typo never silently renders as an undefined variable.
The file is read within the YAML budget of flows (size, nodes after alias expansion, depth).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..config import CONFIG_FILE
from ..errors import ConfigurationError
from ..parsing.yamlpos import YamlBudgetError, load_within_budget

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_configuration(home: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed `config.yml` of `home` ({} when there is none)."""
    path = Path(home) / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"Cannot read the configuration {CONFIG_FILE} of the kestra_nb home: {exc}") \
            from None
    try:
        value = load_within_budget(text, _Loader)
    except YamlBudgetError as exc:
        raise ConfigurationError(f"Invalid {CONFIG_FILE}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigurationError(f"Invalid {CONFIG_FILE}{where}: {getattr(exc, 'problem', None) or exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigurationError(f"Invalid {CONFIG_FILE}: expected a map at the top (like `kestra: ...`)")
    return value


def global_variables(home: str | os.PathLike[str]) -> dict[str, Any]:
    """`kestra.variables.globals` of the home's configuration ({} when not set)."""
    node: Any = load_configuration(home)
    path = []
    for key in ("kestra", "variables", "globals"):
        path.append(key)
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return {}
        if not isinstance(node, dict):
            raise ConfigurationError(f"Invalid {CONFIG_FILE}: `{'.'.join(path)}` must be a map")
    return {str(k): v for k, v in node.items()}


__all__ = ["global_variables", "load_configuration"]
