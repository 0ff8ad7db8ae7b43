"""Prometheus metrics for one running bot (its own registry, so several apps can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """Counters and histograms fed by the callback, dispatcher, outbox, client and scheduler."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.callbacks = Counter(
            "pioneer_callbacks_total", "Callbacks by outcome", ["outcome", "reason"], registry=r
        )
        self.handler_seconds = Histogram(
            "pioneer_handler_seconds",
            "Time from accepted callback to reply, by command",
            ["command"],
            registry=r,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.outbox_depth = Gauge("pioneer_outbox_depth", "Messages queued or being sent", registry=r)
        self.outbox_oldest = Gauge(
            "pioneer_outbox_oldest_seconds", "Age of the oldest queued message", registry=r
        )
        self.outbox_dead = Gauge("pioneer_outbox_dead", "Messages that gave up", registry=r)
        self.sends = Counter(
            "pioneer_sends_total",
            "WeCom sends by channel, result and errcode",
            ["channel", "result", "errcode"],
            registry=r,
        )
        self.retries = Counter(
            "pioneer_send_retries_total", "Sends scheduled for another attempt", registry=r
        )
        self.deaths = Counter("pioneer_send_dead_total", "Sends that ended dead", registry=r)
        self.config_problem_count = Gauge(
            "pioneer_config_problems",
            "Distinct configuration errors (errcode per app or group robot) met and not yet cleared",
            registry=r,
        )
        self.api_requests = Counter(
            "pioneer_api_requests_total",
            "WeCom API requests by api and result",
            ["api", "result", "errcode"],
            registry=r,
        )
        self.job_runs = Counter(
            "pioneer_job_runs_total", "Job runs by job and result", ["job", "result"], registry=r
        )
        self.token_refreshes = Counter("pioneer_token_refreshes_total", "Access token fetches", registry=r)
        # The series every message touches, looked up once (`labels()` costs a few µs a call).
        self._accepted = self.callbacks.labels("accepted", "")
        self._handled: dict[str, Histogram] = {}

    # callback observer
    def accepted(self) -> None:
        self._accepted.inc()

    def refused(self, reason: str) -> None:
        self.callbacks.labels("refused", reason).inc()

    # dispatch observer
    def handled(self, command: str, seconds: float, outcome: str) -> None:
        if outcome == "duplicate":
            self.callbacks.labels("duplicate", "").inc()
        series = self._handled.get(command)
        if series is None:  # one for each command word: a bounded set
            series = self._handled[command] = self.handler_seconds.labels(command or "-")
        series.observe(seconds)

    # outbox observer
    def sent(self, channel: str, errcode: int | None, ok: bool) -> None:
        self.sends.labels(channel, "ok" if ok else "error", str(errcode if errcode is not None else "")).inc()

    def retried(self) -> None:
        self.retries.inc()

    def died(self) -> None:
        self.deaths.inc()

    def config_problems(self, count: int) -> None:
        self.config_problem_count.set(count)

    # client observer
    def token_refreshed(self) -> None:
        self.token_refreshes.inc()

    def request_done(self, api: str, errcode: int | None, ok: bool) -> None:
        self.api_requests.labels(
            api, "ok" if ok else "error", str(errcode if errcode is not None else "")
        ).inc()

    # scheduler observer
    def job_run(self, job: str, result: str) -> None:
        self.job_runs.labels(job, result).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
