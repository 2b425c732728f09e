"""Public names of a package loaded from their modules on first use (module `__getattr__`),
so importing the package, or one module of it, does not import what its other names need
(pandas, SciPy, DuckDB): the command line's quick paths depend on it (issue 18)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_names(
    namespace: dict[str, object], names: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for the package whose globals are `namespace`.

    `names` maps a public name to "module" (the attribute of the same name there) or to
    "module:attribute". A loaded name is kept in the namespace, so it is looked up once.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = names[name].partition(":")
        value = getattr(import_module(module), attribute or name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
