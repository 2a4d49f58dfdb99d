"""The SDK's one exception root. Every error carries a stable `code`: the server's problem `code` when the
server refused something, else one of the SDK's own.

    StudioError                   code, detail, status (HTTP status when the server answered)
     ├── ServerError                the server answered with a problem (RFC 9457 `code`), nothing more to do
     ├── PaymentFailed              the server refused the payment (its `error` reason as `code`)
     ├── NoPayableOffer             nothing the server offers can be paid by this wallet
     ├── SpendLimitExceeded         the price is above a per-call or per-session limit: nothing was paid
     ├── SignInRequired             a job route wants a SIGN-IN-WITH-X proof (its challenge attached)
     ├── JobFailed                  the job ended failed or canceled (its error `code`; `job` attached)
     └── JobTimeout                 the job did not end in time (it goes on; poll it later)
"""

from __future__ import annotations

from typing import Any


class StudioError(Exception):
    """Root of every error the SDK raises on purpose."""

    code: str = "sdk_error"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class ServerError(StudioError):
    code = "server_error"

    def __init__(self, detail: str, *, code: str | None, status: int, problem: dict[str, Any]) -> None:
        super().__init__(detail, code=code, status=status)
        self.problem = problem


class PaymentFailed(StudioError):
    code = "payment_failed"


class NoPayableOffer(StudioError):
    code = "no_payable_offer"


class SpendLimitExceeded(StudioError):
    code = "spend_limit_exceeded"


class SignInRequired(StudioError):
    code = "sign_in_required"

    def __init__(self, detail: str, *, payment_required: dict[str, Any], url: str) -> None:
        super().__init__(detail, status=402)
        self.payment_required = payment_required  # the decoded auth-only PAYMENT-REQUIRED
        self.url = url


class JobFailed(StudioError):
    code = "job_failed"

    def __init__(self, detail: str, *, code: str | None, job: Any) -> None:
        super().__init__(detail, code=code)
        self.job = job


class JobTimeout(StudioError):
    code = "job_timeout"
