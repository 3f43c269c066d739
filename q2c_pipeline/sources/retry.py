"""Bounded exponential backoff for source API calls.

Neither simple-salesforce nor stripe-python retries everything a batch extraction needs to survive
(simple-salesforce retries nothing but an expired session; stripe-python does not retry 429), so
the clients wrap each page request in `call_with_backoff`. Retries are bounded: once they run out
the last error propagates unchanged, so a run fails loudly instead of landing a partial window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: delay n (0-based) is `backoff_base * 2**n` seconds,
    capped at `max_backoff` seconds."""

    max_retries: int = 5
    backoff_base: float = 1.0
    max_backoff: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        return min(self.backoff_base * (2**attempt), self.max_backoff)


class RetriesExhausted(RuntimeError):
    """Raised (from the last error) when a retryable failure persisted through every retry."""


def call_with_backoff(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    is_retryable: Callable[[BaseException], bool],
    what: str,
    on_retry: Callable[[BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn`; on an error `is_retryable` accepts, wait and call again, at most
    `policy.max_retries` times. Non-retryable errors propagate at once.

    `on_retry` runs before each retry (e.g. to log in again). `what` names the call in logs.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as error:
            if not is_retryable(error):
                raise
            if attempt >= policy.max_retries:
                raise RetriesExhausted(
                    f"{what}: still failing after {policy.max_retries} retries: {error!r}"
                ) from error
            wait = policy.delay(attempt)
            logger.warning(
                "%s failed (%s); retry %d/%d in %.2fs",
                what,
                type(error).__name__,
                attempt + 1,
                policy.max_retries,
                wait,
            )
            if on_retry is not None:
                on_retry(error)
            sleep(wait)
            attempt += 1
