"""Serving the engine from an ASGI app (Starlette, FastAPI): JSON responses and HTTP errors.

:class:`JSONResponse` encodes decisioner results (:class:`~decisioner.schemas.Decision`, agent
contexts, reports: every :class:`~decisioner.schemas.Result`), numpy scalars and arrays and plain
data with msgspec, so a route returns ``JSONResponse(decision)`` without converting anything.
:func:`exception_handlers` maps decisioner errors to HTTP statuses (:data:`STATUS`) with the
decisioner message as the body, so a bad event answers ``422`` with the field path and an
unknown placement ``404``::

    app = Starlette(routes=[...], exception_handlers=exception_handlers())

Needs Starlette (``pip install "decisioner[mcp]"`` brings it with uvicorn); the core never
imports this module. See ``examples/04_web_app.py``.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import numpy as np

from ..errors import (
    ConfigError,
    DecisionerError,
    MissingDependencyError,
    ModelError,
    NotReadyError,
    SchemaError,
    UnknownArmError,
    UnknownDecisionError,
    UnknownItemError,
    UnknownPlacementError,
)

try:
    from starlette.requests import Request
    from starlette.responses import JSONResponse as _StarletteJSON
    from starlette.responses import Response
except ImportError:  # pragma: no cover - the extra is installed in the dev environment
    raise MissingDependencyError(
        'Expected Starlette to serve the engine over HTTP, got no `starlette` module - install it with '
        'pip install "decisioner[mcp]"'
    ) from None

__all__ = ["STATUS", "JSONResponse", "status_of", "error_body", "error_response", "exception_handlers"]

#: HTTP status of each decisioner error class; a subclass not listed takes its nearest listed base
#: (``LogLockedError`` -> ``NotReadyError`` -> 503). The request was at fault (4xx) unless the
#: engine is not ready to serve (503) or the server lacks an optional dependency (501).
STATUS: Final[dict[type[DecisionerError], int]] = {
    SchemaError: 422,  # the payload does not match its schema: the message carries the field path
    UnknownItemError: 422,  # the payload names an item the catalog does not have
    UnknownArmError: 422,
    UnknownPlacementError: 404,
    UnknownDecisionError: 404,  # unknown or past its attribution window
    ConfigError: 400,
    ModelError: 400,
    NotReadyError: 503,
    MissingDependencyError: 501,
    DecisionerError: 400,
}


def status_of(exc: DecisionerError) -> int:
    """The HTTP status for ``exc`` (see :data:`STATUS`).

    >>> status_of(UnknownPlacementError("Expected a configured placement, got 'x' - at `placement`"))
    404
    """
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 400


def error_body(exc: DecisionerError) -> dict[str, str]:
    """The JSON body of an error response: the error class and the decisioner message."""
    return {"error": type(exc).__name__, "message": str(exc)}


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise SchemaError(f"Expected JSON-encodable data in a response, got `{type(obj).__name__}` - at `response`")


_encoder: Final = msgspec.json.Encoder(enc_hook=_enc_hook)


class JSONResponse(_StarletteJSON):
    """A Starlette ``JSONResponse`` that encodes decisioner results, msgspec Structs and numpy
    values directly (with msgspec: NaN and infinities become ``null``).

    >>> from decisioner.schemas import Reason
    >>> JSONResponse(Reason(kind="policy", detail="epsilon_greedy")).body
    b'{"kind":"policy","detail":"epsilon_greedy","weight":0.0}'
    """

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def error_response(exc: DecisionerError) -> JSONResponse:
    """``exc`` as an HTTP error response: its :func:`status_of` status and :func:`error_body`."""
    return JSONResponse(error_body(exc), status_code=status_of(exc))


async def _handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DecisionerError)
    return error_response(exc)


def exception_handlers() -> dict[Any, Any]:
    """Starlette's ``exception_handlers`` argument: every decisioner error becomes
    :func:`error_response` (FastAPI takes the same mapping)."""
    return {DecisionerError: _handle}
