"""Names a module exports but loads on first use (PEP 562), so that importing the package,
or :mod:`worker_process.sync` in a worker, stays fast."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def lazy_names(namespace: dict[str, object], modules: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``namespace`` (the module's ``globals()``) that imports
    ``modules[name]`` (relative to the module's package) when ``name`` is first used, and
    keeps the value in ``namespace``.

    Raises (from the returned function):
        AttributeError: ``name`` is not one of ``modules``.
    """
    module_name = namespace["__name__"]
    package = namespace["__package__"]

    def __getattr__(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module, str(package)), name)
        namespace[name] = value
        return value

    return __getattr__
