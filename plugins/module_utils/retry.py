# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded exponential backoff for transient errors, shared by the LDAP and the Kubernetes clients.

One place decides how long a module keeps trying when a server is briefly away (connection refused or
reset, a domain controller that answers busy/unavailable, an API server that answers 429 or 5xx): every
client wraps one request in ``call(func, transient, policy)``.

``transient(exc)`` is the client's own classifier. It returns ``None`` for a permanent error (raised at
once: a refused permission, invalid input, a constraint violation; retrying cannot fix those) or a number
of seconds the server asked us to wait (``0`` when it did not say), for a transient one.

Retries are bounded twice: by a number of attempts and by a time budget, so a module never hangs. When
they run out, the last exception is raised with ``retry_attempts`` (attempts made) and ``retry_seconds``
(time spent waiting) set on it, so the caller's message can say how long it tried.

A policy may also carry ``total``: a wall-clock limit for the whole call, attempts included (an attempt
itself is bounded by the client's socket timeouts, so a call ends within ``total`` plus one attempt).
``policy.within(total)`` gives a copy with that limit; the LDAP client sets it from ``total_timeout``.

``ansible.module_utils.api.retry_with_delays_and_condition`` / ``generate_jittered_backoff`` are not used:
the decorator draws each delay before the attempt runs (so a server's Retry-After cannot shape it), sleeps
with ``time.sleep`` (no injectable clock for the unit tests) and has no time budget.

Two policies are used:

``ESTABLISHED`` once the server has answered at least once in this run (a restart or a failover mid-run:
keep trying for about 15-20 s); ``FIRST_CONTACT`` for the very first request (wrong host or port is far more
likely than an outage that started this very second: fail within about a second with the real message).
"""

from __future__ import annotations

import random
import time


class RetryPolicy(object):
    """attempts: tries in all (1 = no retry); delays initial * factor**n capped at max_delay, plus up to
    ``jitter`` (a fraction) at random, never more than ``budget`` seconds of waiting in all."""

    def __init__(self, attempts=7, initial=0.5, factor=2.0, max_delay=4.0, budget=20.0, jitter=0.1, total=None):
        if attempts < 1:
            raise ValueError('attempts must be at least 1')
        self.total = total
        self.attempts = attempts
        self.initial = initial
        self.factor = factor
        self.max_delay = max_delay
        self.budget = budget
        self.jitter = jitter

    def delay(self, retry_number, hint=None):
        """Seconds to wait before retry number ``retry_number`` (0 = the first retry)."""
        base = min(self.max_delay, self.initial * (self.factor ** retry_number))
        if hint:
            base = min(self.max_delay, max(base, float(hint)))
        return base * (1.0 + self.jitter * random.random())

    def within(self, total):
        """A copy of this policy that gives up once ``total`` seconds have passed since the call started."""
        return RetryPolicy(self.attempts, self.initial, self.factor, self.max_delay, self.budget, self.jitter, total)

    def __repr__(self):
        return 'RetryPolicy(attempts=%s, budget=%ss, total=%s)' % (self.attempts, self.budget, self.total)


ESTABLISHED = RetryPolicy()
FIRST_CONTACT = RetryPolicy(attempts=3, initial=0.25, max_delay=0.5, budget=1.0)
NO_RETRY = RetryPolicy(attempts=1, budget=0)

# HTTP statuses worth another try: the API server asks us to slow down (429; also sent while a new CRD's
# storage initializes) or is temporarily unable to serve (500 from a restarting etcd, 502/503/504 from a
# proxy or an API server that is starting). 4xx other than 429 are permanent.
TRANSIENT_HTTP_STATUSES = frozenset((429, 500, 502, 503, 504))

# LDAP result codes worth another try (RFC 4511): busy (51), unavailable (52). Also the client-side
# "server down"/"connect error"/"timeout" codes that OpenLDAP-style clients report (81, 91, 85).
TRANSIENT_LDAP_CODES = frozenset((51, 52, 81, 85, 91))


def call(func, transient, policy=None, sleep=time.sleep, clock=time.monotonic, on_retry=None):
    """Run ``func()`` until it returns, retrying the exceptions that ``transient`` classifies as transient.

    on_retry(exc, attempt, delay) is called before each wait (for logging or for reconnecting).
    """
    policy = policy or ESTABLISHED
    started = clock()
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return func()
        except Exception as exc:  # pylint: disable=broad-except
            hint = transient(exc)
            if hint is None:
                raise
            delay = policy.delay(attempt - 1, hint)
            out_of_time = policy.total is not None and clock() - started + delay > policy.total
            if attempt >= policy.attempts or waited + delay > policy.budget or out_of_time:
                _annotate(exc, attempt, clock() - started if policy.total is not None else waited)
                raise
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            sleep(delay)
            waited += delay


def _annotate(exc, attempts, waited):
    try:
        exc.retry_attempts = attempts
        exc.retry_seconds = round(waited, 1)
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass


def describe(exc):
    """' (tried N times over S s)' for an exception that went through call() with retries, else ''."""
    attempts = getattr(exc, 'retry_attempts', None)
    if not attempts or attempts < 2:
        return ''
    return ' (tried %d times over %.1f s)' % (attempts, getattr(exc, 'retry_seconds', 0.0))
