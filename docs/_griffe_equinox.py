"""Griffe extension: signatures for `equinox.Module` classes during static analysis.

An `eqx.Module` is a dataclass built by a metaclass, so griffe's own dataclass support
(which looks for `@dataclass`) does not see its generated `__init__`. This extension
rebuilds it from the annotated fields, in order, for every Module subclass that does
not define `__init__` itself (`eqx.field(default=...)` and plain `= value` defaults are
honoured). Used by mkdocs.yml only; not part of the package.
"""

from typing import Any

import griffe


def _is_equinox_module(cls: griffe.Class) -> bool:
    for base in cls.bases:
        path = base.canonical_path if isinstance(base, griffe.Expr) else str(base)
        if path in ("equinox.Module", "equinox._module.Module", "eqx.Module"):
            return True
    return False


def _default(attribute: griffe.Attribute):
    value = attribute.value
    if isinstance(value, griffe.ExprCall) and value.canonical_path in (
        "equinox.field",
        "equinox._module.field",
        "eqx.field",
    ):
        for argument in value.arguments:
            if getattr(argument, "name", None) == "default":
                return argument.value
        return None
    return value


def _add_init(cls: griffe.Class) -> None:
    parameters = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute or member.annotation is None:
            continue
        if "property" in member.labels:
            continue
        parameters.append(
            griffe.Parameter(
                member.name,
                annotation=member.annotation,
                kind=griffe.ParameterKind.positional_or_keyword,
                default=_default(member),
            )
        )
    init = griffe.Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=cls,
        parameters=griffe.Parameters(*parameters),
        returns="None",
    )
    cls.set_member("__init__", init)


def _visit(obj, seen: set) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if isinstance(obj, griffe.Class) and "__init__" not in obj.members:
        if _is_equinox_module(obj):
            _add_init(obj)
    for member in obj.members.values():
        if not member.is_alias and (member.is_module or member.is_class):
            _visit(member, seen)


class EquinoxModules(griffe.Extension):
    """Adds the dataclass `__init__` of `eqx.Module` subclasses."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _visit(pkg, set())
