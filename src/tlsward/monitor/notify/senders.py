"""Notifiers: one small class per receiver kind, each turning a notification into one delivery attempt.

Every failure is a :class:`DeliveryError`, one line naming the receiver, where it sends (without secrets) and
what went wrong (``HTTP 500 Internal Server Error: <short body>``, ``connection refused``, ``SMTP 535 ...``).
``retryable`` says whether trying again can help: a 5xx, 408, 429, a refused or dropped connection or an SMTP 4xx
can; a 4xx, an SMTP 5xx or an untrusted certificate cannot (retrying would only delay the error a person must
fix). A notifier never retries itself: the :class:`~tlsward.monitor.notify.dispatch.Dispatcher` does.

Each send is bounded by the receiver's ``timeout`` per network operation and three times that in total.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import smtplib
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, Protocol

import certifi
import httpx

from tlsward import __version__
from tlsward.model.alerts import Notification
from tlsward.model.errors import NotifyError
from tlsward.monitor.notify.config import ReceiverConfig, ReceiverKind, SmtpConfig, SmtpSecurity
from tlsward.monitor.notify.payloads import (
    alertmanager_alerts,
    email_message,
    pagerduty_event,
    rfc3339,
    slack_message,
    webhook_payload,
)

__all__ = [
    "AlertmanagerNotifier",
    "DeliveryError",
    "EmailNotifier",
    "Notifier",
    "PagerDutyNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "build_notifier",
]

USER_AGENT = f"tlsward/{__version__}"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_BODY_SHOWN = 200
MAX_RETRY_AFTER = 3600.0
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DeliveryError(NotifyError):
    """One failed delivery attempt: ``str()`` is the line to show; the attributes drive the retry decision."""

    def __init__(self, receiver: str, target: str, detail: str, *, retryable: bool,
                 retry_after: float | None = None) -> None:
        super().__init__(f"receiver {receiver!r} ({target}): {detail}")
        self.receiver = receiver
        self.target = target
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(Protocol):
    """What the dispatcher drives. ``send`` raises :class:`~tlsward.model.errors.NotifyError` on failure."""

    @property
    def name(self) -> str: ...

    async def send(self, notification: Notification) -> None: ...

    async def aclose(self) -> None: ...


def _tls_context(config: ReceiverConfig) -> ssl.SSLContext:
    """The configured CA alone when there is one (an internal receiver), else the Mozilla roots."""
    cafile = str(config.ca_file) if config.ca_file is not None else certifi.where()
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(config.name, config.target, f"cannot load CA file {cafile}: {_one_line(exc)}",
                            retryable=False) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _short_body(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    text = "".join(c for c in text if c.isprintable())
    return text if len(text) <= MAX_BODY_SHOWN else text[: MAX_BODY_SHOWN - 3] + "..."


def _retry_after(value: str | None) -> float | None:
    """Only the delta-seconds form: an HTTP date from a misconfigured clock is not worth trusting."""
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER)


class _HttpNotifier:
    """POSTs one JSON document per notification through one pooled ``httpx.AsyncClient`` (made on first use)."""

    kind: ReceiverKind

    def __init__(self, config: ReceiverConfig, *, now: Clock = utc_now) -> None:
        if config.kind is not self.kind:
            raise ValueError(f"{type(self).__name__} needs a {self.kind.value} receiver, got {config.kind.value}")
        if config.url is None:
            raise ValueError(f"receiver {config.name!r} has no url")
        self.config = config
        self.now = now
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def url(self) -> str:
        assert self.config.url is not None
        return self.config.url

    def body(self, notification: Notification) -> Any:
        raise NotImplementedError

    def _fail(self, detail: str, *, retryable: bool, retry_after: float | None = None) -> DeliveryError:
        return DeliveryError(self.config.name, self.config.target, detail, retryable=retryable,
                             retry_after=retry_after)

    def _client_for_loop(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"User-Agent": USER_AGENT, "Accept": "application/json, */*"}
            headers.update(dict(self.config.headers))
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.config.timeout), verify=_tls_context(self.config), headers=headers,
                follow_redirects=False,
            )
        return self._client

    async def send(self, notification: Notification) -> None:
        content = json.dumps(self.body(notification), ensure_ascii=False, separators=(",", ":")).encode()
        client = self._client_for_loop()
        total = self.config.timeout * 3
        try:
            async with (
                asyncio.timeout(total),
                client.stream("POST", self.url(), content=content,
                              headers={"Content-Type": "application/json"}) as response,
            ):
                status = response.status_code
                if 200 <= status < 300:
                    return
                body = await _read_capped(response)
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                detail = f"HTTP {status}{reason}"
                shown = _short_body(body)
                if shown:
                    detail += f": {shown}"
                if 300 <= status < 400:
                    detail += " (redirects are not followed: configure the final URL)"
                retryable = status >= 500 or status in (408, 425, 429)
                raise self._fail(detail, retryable=retryable,
                                 retry_after=_retry_after(response.headers.get("Retry-After")))
        except DeliveryError:
            raise
        except TimeoutError:
            raise self._fail(f"timed out after {total:g}s in total", retryable=True) from None
        except httpx.TimeoutException as exc:
            raise self._fail(f"{timeout_phase(exc)} timed out after {self.config.timeout:g}s", retryable=True) from None
        except httpx.ConnectError as exc:
            detail, retryable = _connect_cause(exc)
            raise self._fail(detail, retryable=retryable) from None
        except httpx.HTTPError as exc:
            raise self._fail(f"{type(exc).__name__}: {_one_line(exc)}", retryable=True) from None
        except OSError as exc:
            raise self._fail(exc.strerror or _one_line(exc), retryable=True) from None

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)


def timeout_phase(exc: httpx.TimeoutException) -> str:
    """Which part of an HTTP exchange timed out, in words for a one-line error."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect"
    if isinstance(exc, httpx.ReadTimeout):
        return "read"
    if isinstance(exc, httpx.WriteTimeout):
        return "write"
    return "request"


def _connect_cause(exc: BaseException) -> tuple[str, bool]:
    """The OS-level cause under httpx's wrapper (refused, DNS, TLS) and whether trying again can help."""
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            break
        found = _os_cause(cause)
        if found is not None:
            return found
        cause = cause.__cause__ or cause.__context__
    return _one_line(exc), True


def _os_cause(cause: BaseException) -> tuple[str, bool] | None:
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(cause, socket.gaierror):
        return f"name does not resolve ({cause.strerror})", True
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({cause.verify_message})", False
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake failed ({cause.reason or _one_line(cause)})", False
    if isinstance(cause, TimeoutError):
        return "timed out", True
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[0].lower() + cause.strerror[1:], True
    return None


class WebhookNotifier(_HttpNotifier):
    """The generic webhook: the versioned JSON document of :func:`~.payloads.webhook_payload`."""

    kind = ReceiverKind.WEBHOOK

    def body(self, notification: Notification) -> Any:
        return webhook_payload(notification)


class SlackNotifier(_HttpNotifier):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): ``text`` plus ``blocks``."""

    kind = ReceiverKind.SLACK

    def body(self, notification: Notification) -> Any:
        return slack_message(notification)


class PagerDutyNotifier(_HttpNotifier):
    """PagerDuty Events API v2: trigger and resolve share ``dedup_key`` = the alert key, so one alert is one
    incident however many reminders are sent."""

    kind = ReceiverKind.PAGERDUTY

    def body(self, notification: Notification) -> Any:
        assert self.config.routing_key is not None
        return pagerduty_event(notification, self.config.routing_key)


class AlertmanagerNotifier(_HttpNotifier):
    """Prometheus Alertmanager API v2 (``POST /api/v2/alerts``): Alertmanager then groups, silences, inhibits
    and routes like it does for Prometheus' own alerts."""

    kind = ReceiverKind.ALERTMANAGER

    def url(self) -> str:
        base = super().url().rstrip("/")
        return base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts"

    def body(self, notification: Notification) -> Any:
        return alertmanager_alerts(notification, now=self.now(), generator_url=self.config.generator_url,
                                   firing_ttl=self.config.firing_ttl)

    async def send(self, notification: Notification) -> None:
        """Post the alert, then end any other label set of the same alert key still active in Alertmanager.

        Labels are an alert's identity there, and an escalation changes ``severity`` and ``route``: without
        this, the superseded version would stay active until its ``endsAt``."""
        await super().send(notification)
        [posted] = self.body(notification)
        key, labels = posted["labels"].get("alert_key"), posted["labels"]
        client = self._client_for_loop()
        try:
            async with asyncio.timeout(self.config.timeout * 3):
                response = await client.get(self.url(), params={"filter": f'alert_key="{key}"'})
                if response.status_code != 200:
                    raise self._fail(f"HTTP {response.status_code} listing alerts to end superseded versions",
                                     retryable=response.status_code >= 500)
                stale = [alert for alert in response.json() if alert.get("labels") != labels]
                if not stale:
                    return
                ended = rfc3339(self.now())
                body = [{"labels": alert["labels"], "annotations": alert.get("annotations", {}),
                         "startsAt": alert.get("startsAt"), "endsAt": ended} for alert in stale]
                answer = await client.post(self.url(), content=json.dumps(body).encode(),
                                           headers={"Content-Type": "application/json"})
                if not 200 <= answer.status_code < 300:
                    raise self._fail(f"HTTP {answer.status_code} ending {len(stale)} superseded alert version(s)",
                                     retryable=answer.status_code >= 500)
        except (httpx.HTTPError, TimeoutError, ValueError, KeyError) as exc:
            raise self._fail(f"ending superseded alert versions: {type(exc).__name__}: {exc}",
                             retryable=True) from None


class EmailNotifier:
    """Plain-text mail over SMTP (stdlib ``smtplib`` in a worker thread: no extra dependency).

    ``starttls`` refuses to continue when the server does not offer STARTTLS (no silent downgrade to plain
    text); the certificate is always verified, against ``ca_file`` when configured.
    """

    def __init__(self, config: ReceiverConfig, *, now: Clock = utc_now) -> None:
        if config.kind is not ReceiverKind.EMAIL or config.smtp is None:
            raise ValueError(f"EmailNotifier needs an email receiver, got {config.kind.value}")
        self.config = config
        self.smtp: SmtpConfig = config.smtp
        self.now = now
        self._context: ssl.SSLContext | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def _fail(self, detail: str, *, retryable: bool) -> DeliveryError:
        return DeliveryError(self.config.name, self.config.target, detail, retryable=retryable)

    async def send(self, notification: Notification) -> None:
        if self._context is None and self.smtp.security is not SmtpSecurity.PLAIN:
            self._context = _tls_context(self.config)
        message = email_message(notification, sender=self.smtp.sender, recipients=self.smtp.recipients,
                                now=self.now())
        total = self.config.timeout * 3
        try:
            # The thread cannot be cancelled; the socket timeout bounds how long it outlives a give-up.
            await asyncio.wait_for(asyncio.to_thread(self._send_sync, message), total)
        except TimeoutError:
            raise self._fail(f"timed out after {total:g}s in total", retryable=True) from None

    def _send_sync(self, message: EmailMessage) -> None:
        try:
            self._deliver(message)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{rcpt} ({_reply(code, text)})" for rcpt, (code, text) in exc.recipients.items())
            retryable = all(400 <= code < 500 for code, _ in exc.recipients.values())
            raise self._fail(f"every recipient refused: {refused}", retryable=retryable) from None
        except smtplib.SMTPResponseException as exc:
            what = "login refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "server refused"
            raise self._fail(f"{what}: {_reply(exc.smtp_code, exc.smtp_error)}",
                             retryable=400 <= exc.smtp_code < 500) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise self._fail(f"server closed the connection ({_one_line(exc)})", retryable=True) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise self._fail(f"server does not support it: {_one_line(exc)}", retryable=False) from None
        except smtplib.SMTPException as exc:
            raise self._fail(f"SMTP error: {_one_line(exc)}", retryable=True) from None
        except OSError as exc:
            found = _os_cause(exc)
            detail, retryable = found if found is not None else (_one_line(exc), True)
            raise self._fail(detail, retryable=retryable) from None

    def _deliver(self, message: EmailMessage) -> None:
        smtp = self.smtp
        timeout = self.config.timeout
        client: smtplib.SMTP
        if smtp.security is SmtpSecurity.TLS:
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=self._context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with client:
            client.ehlo()
            if smtp.security is SmtpSecurity.STARTTLS:
                if not client.has_extn("starttls"):
                    raise self._fail("server does not offer STARTTLS; not sending in plain text", retryable=False)
                client.starttls(context=self._context)
                client.ehlo()
            if smtp.username is not None and smtp.password is not None:
                client.login(smtp.username, smtp.password)
            refused = client.send_message(message, from_addr=smtp.sender, to_addrs=list(smtp.recipients))
            if refused:
                # Delivered to the others: retrying would send them a duplicate, so this is final.
                shown = "; ".join(f"{rcpt} ({_reply(code, text)})" for rcpt, (code, text) in refused.items())
                raise self._fail(f"some recipients refused: {shown}", retryable=False)

    async def aclose(self) -> None:
        return None


def _reply(code: int, text: bytes | str) -> str:
    """``SMTP 535 5.7.8 Authentication failed``: the reply as the server gave it, on one line."""
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    shown = " ".join(shown.split())
    if len(shown) > MAX_BODY_SHOWN:
        shown = shown[: MAX_BODY_SHOWN - 3] + "..."
    return f"SMTP {code} {shown}".rstrip()


_KINDS: dict[ReceiverKind, type[WebhookNotifier | SlackNotifier | PagerDutyNotifier | AlertmanagerNotifier]] = {
    ReceiverKind.WEBHOOK: WebhookNotifier,
    ReceiverKind.SLACK: SlackNotifier,
    ReceiverKind.PAGERDUTY: PagerDutyNotifier,
    ReceiverKind.ALERTMANAGER: AlertmanagerNotifier,
}


def build_notifier(config: ReceiverConfig, *, now: Clock = utc_now) -> Notifier:
    """The notifier for a validated receiver config (see :func:`~.config.receivers_from_mapping`)."""
    if config.kind is ReceiverKind.EMAIL:
        return EmailNotifier(config, now=now)
    return _KINDS[config.kind](config, now=now)
