"""OpenAI-shaped errors: what a client's SDK parses into a typed exception.

Every refusal the server makes is an `ApiError`, rendered as `{"error": {"message", "type",
"param", "code"}}` with the HTTP status OpenAI uses for it, so `openai.AuthenticationError`,
`BadRequestError` and the rest come out in the client, each with a sentence a user understands.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from app.core.errors import LeanCoderError

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


class ApiError(LeanCoderError):
    """A request the server refuses or cannot serve; `str()` is the message for the client."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": _TYPES.get(self.status, "invalid_request_error"),
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value" if param else None)
