"""The one error type of the Graph emulator: raised by the model, turned into Graph's error
shape (``{"error": {"code", "message", "innerError"}}``) at the HTTP edge."""

from __future__ import annotations


class GraphError(Exception):
    """A Graph-level failure with the status and ``error.code`` real Graph would send."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def __repr__(self) -> str:
        return f"GraphError({self.status}, {self.code!r}, {self.message!r})"


def not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.",
    )


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def unsupported_query(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)
