"""Where the conformance kit's reference files are: the test vectors, the contract text and
the Python reference candidates.

An installed wheel carries copies of them in ``worker_process/conformance/shipped/`` (the
build copies them from ``spec/`` and ``interop/candidates/``); a source checkout (an editable
install) has the originals.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["candidates_directory", "contract_path", "vectors_directory"]

_SHIPPED = Path(__file__).resolve().parent / "shipped"
_CHECKOUT = Path(__file__).resolve().parents[3]


def _installed() -> bool:
    return _SHIPPED.is_dir() or not (_CHECKOUT / "spec" / "vectors").is_dir()


def vectors_directory() -> Path:
    """The folder of the JSON test vectors (``spec/vectors/`` in a checkout)."""
    return _SHIPPED / "vectors" if _installed() else _CHECKOUT / "spec" / "vectors"


def contract_path() -> Path:
    """The conformance contract and scenario catalogue (``spec/conformance.md``)."""
    return _SHIPPED / "conformance.md" if _installed() else _CHECKOUT / "spec" / "conformance.md"


def candidates_directory() -> Path:
    """The Python reference candidates (``interop/candidates/`` in a checkout)."""
    return _SHIPPED / "candidates" if _installed() else _CHECKOUT / "interop" / "candidates"
