"""DAG params: defaults a run's conf may override, checked against a small JSON Schema subset.

``Param(5, type="integer", minimum=3)`` carries a default and a schema; a plain value is a
param without a schema. Trigger-time validation works from the serialized form
(``params_to_json``), so the CLI never imports the DAG file. The keywords checked are ``type``,
``enum``, ``const``, ``anyOf``, the number bounds and ``multipleOf``, ``minLength``/``maxLength``,
``pattern``, ``format`` (date, date-time, time), the array and the object keywords; others
(``title``, ``description``, UI hints) are ignored, as JSON Schema validators do.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from typing import Any, Final

from minisched.exceptions import DagDefinitionError, ParamValidationError


class _NoDefault:
    def __repr__(self) -> str:
        return "NOTSET"


NO_DEFAULT: Final = _NoDefault()

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


class Param:
    """A DAG param: a default (optional) and a JSON Schema the value must satisfy."""

    def __init__(self, default: Any = NO_DEFAULT, description: str | None = None, **schema: Any) -> None:
        self.value = default
        self.description = description
        self.schema: dict[str, Any] = dict(schema)
        if description is not None:
            self.schema.setdefault("description", description)

    @property
    def has_value(self) -> bool:
        return self.value is not NO_DEFAULT

    def resolve(self, value: Any = NO_DEFAULT, *, name: str = "param") -> Any:
        """``value`` (else the default), checked against the schema; raises ParamValidationError."""
        final = self.value if value is NO_DEFAULT else value
        if final is NO_DEFAULT:
            raise ParamValidationError(f"param {name!r} is required: it has no default and no value given")
        error = schema_error(final, self.schema, f"param {name!r}")
        if error:
            raise ParamValidationError(error)
        return final

    def __repr__(self) -> str:
        return f"Param({self.value!r}, {self.schema!r})"


class DagParam:
    """A ``@dag`` function's parameter: it stands for that param's value in a run.

    Passed to a task's templated field (a ``@task`` call's arguments, ``op_kwargs``, ...), it is
    resolved when the try renders its templates, as Airflow's: the run's conf first, then the
    value the ``@dag`` function got, then the DAG's params.
    """

    def __init__(self, name: str, default: Any = NO_DEFAULT) -> None:
        self.name = name
        self.default = default

    def resolve(self, context: Mapping[str, Any]) -> Any:
        conf = context.get("conf") or {}
        if self.name in conf:
            return conf[self.name]
        if self.default is not NO_DEFAULT:
            return self.default.value if isinstance(self.default, Param) else self.default
        params = context.get("params") or {}
        if self.name in params:
            return params[self.name]
        raise ParamValidationError(f"no value for param {self.name!r}: pass it in the run's conf")

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"


def as_params(dag_id: str, values: Mapping[str, Any]) -> dict[str, Param]:
    """DAG(params=...) as Params; plain values become Params without a schema."""
    params: dict[str, Param] = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise DagDefinitionError(f"DAG {dag_id!r}: param names must be strings, got {name!r}")
        param = value if isinstance(value, Param) else Param(value)
        if param.schema and param.has_value and not _is_json(param.value):
            raise DagDefinitionError(
                f"DAG {dag_id!r}: the default of Param {name!r} is not JSON ({param.value!r}); "
                "use a string, number, boolean, list, dict or None"
            )
        params[name] = param
    return params


def param_values(params: Mapping[str, Param]) -> dict[str, Any]:
    """The values a run without conf sees: each param's default (params without one are left out)."""
    return {name: param.value for name, param in params.items() if param.has_value}


def params_to_json(params: Mapping[str, Param]) -> dict[str, Any]:
    """What trigger-time validation needs; a default that is not JSON is kept as its text."""
    out: dict[str, Any] = {}
    for name, param in params.items():
        entry: dict[str, Any] = {"schema": param.schema}
        if param.has_value:
            entry["default"] = param.value if _is_json(param.value) else str(param.value)
        out[name] = entry
    return out


def validate_conf(params_json: Mapping[str, Any], conf: Mapping[str, Any] | None) -> None:
    """Airflow's trigger check: the params overridden by ``conf`` must all resolve and validate."""
    given = dict(conf or {})
    for name, entry in params_json.items():
        param = Param(entry.get("default", NO_DEFAULT), **entry.get("schema", {}))
        param.resolve(given.get(name, NO_DEFAULT), name=name)


def schema_error(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    """The first way ``value`` breaks ``schema``, as one line naming ``where``; None if it fits."""
    for check in (_type_error, _choice_error, _number_error, _string_error, _array_error, _object_error):
        error = check(value, schema, where)
        if error:
            return error
    options = schema.get("anyOf")
    if options and all(schema_error(value, option, where) for option in options):
        return f"{where}: {value!r} matches none of the anyOf schemas"
    return None


def _type_error(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    wanted = schema.get("type")
    if wanted is None:
        return None
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    if any(_has_type(value, name) for name in names):
        return None
    return f"{where}: {value!r} is not of type {' or '.join(map(repr, names))}"


def _has_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return name == "boolean"
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, ()))


def _choice_error(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} is not one of {list(schema['enum'])!r}"
    if "const" in schema and value != schema["const"]:
        return f"{where}: {value!r} is not {schema['const']!r}"
    return None


def _number_error(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    bounds: tuple[tuple[str, Callable[[Any, Any], bool], str], ...] = (
        ("minimum", operator.lt, "less than the minimum of"),
        ("maximum", operator.gt, "greater than the maximum of"),
        ("exclusiveMinimum", operator.le, "less than or equal to the exclusive minimum of"),
        ("exclusiveMaximum", operator.ge, "greater than or equal to the exclusive maximum of"),
    )
    for keyword, broken, text in bounds:
        if keyword in schema and broken(value, schema[keyword]):
            return f"{where}: {value!r} is {text} {schema[keyword]!r}"
    step = schema.get("multipleOf")
    if step and not math.isclose(value / step, round(value / step)):
        return f"{where}: {value!r} is not a multiple of {step!r}"
    return None


def _string_error(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    if not isinstance(value, str):
        return None
    if "minLength" in schema and len(value) < schema["minLength"]:
        return f"{where}: {value!r} is shorter than {schema['minLength']} characters"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"{where}: {value!r} is longer than {schema['maxLength']} characters"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"{where}: {value!r} does not match {schema['pattern']!r}"
    fmt = schema.get("format")
    if fmt and not _has_format(value, fmt):
        return f"{where}: {value!r} is not a valid {fmt!r}"
    return None


def _has_format(value: str, fmt: str) -> bool:
    parsers: dict[str, Callable[[str], object]] = {
        "date": date.fromisoformat,
        "date-time": datetime.fromisoformat,
        "time": time.fromisoformat,
    }
    parse = parsers.get(fmt)
    if parse is None:  # JSON Schema: unknown formats are not asserted
        return True
    try:
        parse(value)
    except ValueError:
        return False
    return fmt != "date-time" or "T" in value.upper() or " " in value


def _array_error(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    if not isinstance(value, (list, tuple)):
        return None
    if "minItems" in schema and len(value) < schema["minItems"]:
        return f"{where}: {value!r} has fewer than {schema['minItems']} items"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"{where}: {value!r} has more than {schema['maxItems']} items"
    if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
        return f"{where}: {value!r} has repeated items"
    items = schema.get("items")
    if isinstance(items, Mapping):
        return _first(schema_error(item, items, f"{where}[{i}]") for i, item in enumerate(value))
    return None


def _object_error(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    if not isinstance(value, dict):
        return None
    missing = [key for key in schema.get("required", ()) if key not in value]
    if missing:
        return f"{where}: required key(s) {', '.join(map(repr, missing))} missing"
    properties: Mapping[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            error = schema_error(item, properties[key], f"{where}.{key}")
        elif extra is False:
            error = f"{where}: key {key!r} is not allowed"
        elif isinstance(extra, Mapping):
            error = schema_error(item, extra, f"{where}.{key}")
        else:
            error = None
        if error:
            return error
    return None


def _first(errors: Iterable[str | None]) -> str | None:
    return next((error for error in errors if error), None)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
