"""The errors of talking to Bria: its error statuses, its async jobs and its result links.

A branch of the one exception tree drawn in ``runner.errors`` (under ``BriaRunError``), kept
beside the client that raises it. The API token never appears in any of them: ``ApiError``
keeps only method, path, status and Bria's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.errors import BriaRunError


@dataclass
class ApiError(BriaRunError):
    """Bria answered a request with an error status."""

    status: int | None
    method: str
    path: str
    bria_message: str = ""
    body: Any = field(default=None, repr=False)
    retry_after: float | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def message(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no answer"
        text = f"{self.method} {self.path}: {status}"
        if self.bria_message:
            text += f": {self.bria_message}"
        if self.hint:
            text += f". {self.hint}"
        return text

    def __str__(self) -> str:  # dataclass would otherwise generate a repr-like str
        return self.message()

    @property
    def is_transient(self) -> bool:
        return self.status in (429, 502, 503, 504) or self.status is None


class BadRequest(ApiError):
    pass


class Unauthorized(ApiError):
    hint = "Check BRIA_API_TOKEN (Bria console: Account -> API Keys)"


class Forbidden(ApiError):
    hint = "Your account has no access to this, or its quota is used up"


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class PreconditionFailed(ApiError):
    pass


class PayloadTooLarge(ApiError):
    hint = "Bria accepts images up to 12 MB"


class UnsupportedMediaType(ApiError):
    hint = "Bria accepts JPEG, PNG and WEBP"


class Unprocessable(ApiError):
    pass


class RateLimited(ApiError):
    pass


class UrlDownloadFailed(ApiError):
    pass


class ServerError(ApiError):
    hint = "Bria had a server error. Run the same command again later: every finished step is kept"


class NetworkError(ApiError):
    """No HTTP answer: connection refused or dropped, timeout. Unless it is ``NotSent``, the
    request may have reached Bria and done its work there."""

    hint = ("Bria could not be reached. Check your network (and BRIA_API_URL), then run the "
            "same command again: every finished step is kept")


class NotSent(NetworkError):
    """No connection was made (refused, unreachable, a connect or pool timeout): the request
    never left, so it made nothing at Bria. Anything that fails after a connection was made
    (a reset, a cut answer, a read timeout) may have reached Bria: httpx cannot tell a request
    Bria never read from one it acted on (its write errors are even turned into read errors)."""


class AnswerTooLarge(ServerError):
    """An answer past the cap bria-run reads (``runner.bria.bounds``); for a POST its outcome
    is unknown, like a lost answer's, and is reconciled the same way."""

    hint = ("Bria's answers are small JSON documents; this one was cut off and not used. Run "
            "the same command again later: every finished step is kept")


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    429: RateLimited,
    460: UrlDownloadFailed,
}


def api_error_class(status: int) -> type[ApiError]:
    """The ApiError subclass for an HTTP status (5xx and unknown codes: ServerError/ApiError)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return ApiError


class JobError(BriaRunError):
    def __init__(self, request_id: str, detail: str = "") -> None:
        super().__init__()
        self.request_id, self.detail = request_id, detail

    def message(self) -> str:
        text = f"{self.what} (request {self.request_id})"
        return f"{text}: {self.detail}" if self.detail else text

    what = "generation job failed"


class JobFailed(JobError):
    what = "generation failed"


class JobUnknown(JobError):
    what = "Bria reported status UNKNOWN, a server fault"


class JobLost(JobError):
    what = "Bria no longer knows this generation job"


class JobTimeout(JobError):
    """The job may still finish: its request id stays valid, poll again later."""

    what = "generation job did not finish in time"


class PaidJobMayExist(BriaRunError):
    """A POST that cannot be proven absent lost its answer a second time in this run."""

    def __init__(self, step: str, op: str, detail: str) -> None:
        super().__init__()
        self.step, self.op, self.detail = step, op, detail

    def message(self) -> str:
        return (f"{self.op} for {self.step}: its answer was lost twice ({self.detail}). A paid "
                "job may exist at Bria; nothing more will be sent for this step in this run. "
                "A later run sends it once more")


class ResultExpired(BriaRunError):
    def __init__(self, url_path: str) -> None:
        super().__init__()
        self.url_path = url_path

    def message(self) -> str:
        return f"result link expired before download: {self.url_path}"


class ResultRefused(BriaRunError):
    """A result link to a link-local, multicast or unspecified address (or to a private one
    while the API is public): never fetched, so no cloud metadata service is asked."""

    def __init__(self, url_path: str, host: str, why: str) -> None:
        super().__init__()
        self.url_path, self.host, self.why = url_path, host, why

    def message(self) -> str:
        return (f"refused the result link {self.url_path} on {self.host}: {self.why}. Nothing "
                f"was fetched; bria-run only downloads results from public addresses (or from "
                f"the API's own network, as with the simulator)")


class ResultInvalid(BriaRunError):
    """A download that broke a bound (size, time) or is not an image; retried, then this."""

    def __init__(self, url_path: str, reason: str) -> None:
        super().__init__()
        self.url_path, self.reason = url_path, reason

    def message(self) -> str:
        return (f"download of {self.url_path} failed: {self.reason}. Nothing was written; run "
                f"again to retry it (the paid result's link is kept)")
