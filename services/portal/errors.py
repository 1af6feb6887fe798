"""What can go wrong on a portal request, each with its HTTP status and a message for the page.

Handlers map these (and Starlette's own 404/405 and invalid parameters) to an error page, or to
a JSON body under ``/api/`` (services/portal/app.py). Anything out of the viewer's scope is
:class:`NotFound`, never "forbidden": an id from another tenant must look like no id at all.
"""

from __future__ import annotations


class PortalError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(PortalError):
    status = 404
    title = "Not found"

    def __init__(self, message: str = "There is nothing here, or nothing you may see.") -> None:
        super().__init__(message)


class ReadOnly(PortalError):
    status = 403
    title = "Read-only"

    def __init__(self, message: str = "Your login may look but not change anything.") -> None:
        super().__init__(message)


class CsrfRefused(PortalError):
    status = 403
    title = "Form expired"

    def __init__(self, message: str = "This form was not sent from a page of this portal, or "
                 "it is too old. Reload the page and send it again.") -> None:
        super().__init__(message)


class TooManyAttempts(PortalError):
    status = 429
    title = "Too many attempts"

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, round(retry_after + 0.5))
        super().__init__(f"Too many failed logins. Try again in {self.retry_after} seconds.")


class Unavailable(PortalError):
    status = 503
    title = "Unavailable"


class LoginRequired(Exception):  # a redirect, not an error page
    """The page needs a login: the handler redirects to ``/login?next=<path>``."""
