"""Which days deserve an alert, and delivering them.

Every alert is first queued in the catalog (``alerts`` table, unique per day and reason)
in the same transaction that marks the day handled, and logged; delivery to a webhook
comes after and is retried on later polls until it succeeds (or ``max_attempts``). So a
restart never queues an alert twice and never loses one. Delivery is at-least-once: a
crash between the receiver's 2xx and our bookkeeping sends that alert again on restart,
so the payload carries ``alert_id`` for the receiver to drop repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from astro_exp.data.catalog import Catalog
from astro_exp.errors import ConfigError
from astro_exp.net.session import DEFAULT_USER_AGENT
from astro_exp.predict.classifier import Prediction
from astro_exp.watch.duration import parse_duration

log = logging.getLogger("astro_exp.watch")


@dataclass
class AlertRules:
    """When to alert: on anomalies, and on chosen labels above a confidence."""

    labels: list[str] = field(default_factory=list)
    anomalies: bool = True
    min_confidence: float = 0.0
    webhook_url: str | None = None
    webhook_timeout_s: float = 10.0
    max_attempts: int = 20

    @classmethod
    def from_config(
        cls, cfg: Mapping[str, Any], classes: Iterable[str] | None = None
    ) -> AlertRules:
        """From ``alerts.*`` (checks the labels against the model's classes)."""
        labels = [str(x) for x in (cfg.get("labels") or [])]
        if classes is not None:
            unknown = sorted(set(labels) - set(classes))
            if unknown:
                raise ConfigError(
                    f"alerts.labels {unknown} are not classes of the model; pick from {sorted(classes)}"
                )
        url = cfg.get("webhook_url") or None
        if url is not None and urlsplit(str(url)).scheme not in ("http", "https"):
            raise ConfigError(f"alerts.webhook_url={url!r} must be an http(s) URL")
        conf = float(cfg.get("min_confidence", 0.0))
        if not 0.0 <= conf <= 1.0:
            raise ConfigError(f"alerts.min_confidence={conf} must be between 0 and 1")
        return cls(
            labels=labels,
            anomalies=bool(cfg.get("anomalies", True)),
            min_confidence=conf,
            webhook_url=str(url) if url else None,
            webhook_timeout_s=parse_duration(
                cfg.get("webhook_timeout", 10), "alerts.webhook_timeout"
            ),
            max_attempts=int(cfg.get("max_attempts", 20)),
        )

    def reasons(self, pred: Prediction) -> list[str]:
        """Why this prediction is worth an alert (empty: it is not)."""
        out = []
        if self.anomalies and pred.is_anomaly:
            out.append("anomaly")
        conf = pred.confidence if pred.confidence is not None else 0.0
        for label in pred.labels or ([pred.label] if pred.label else []):
            if label in self.labels and conf >= self.min_confidence:
                out.append(f"label:{label}")
        return out


def alert_payload(
    reason: str, row: Mapping[str, Any], pred: Prediction, run_id: str
) -> dict[str, Any]:
    """The JSON an alert carries (the webhook body, also kept in the catalog): the fused
    answer (``label``: the picture and the day's text together when a text was given), what
    decided it (``evidence``) and what the picture and the text each said on their own."""
    picture, text = pred.picture, pred.text
    return {
        "event": "astro-exp.alert",
        "reason": reason,
        "source": row.get("source"),
        "date": row.get("date"),
        "picture_id": row.get("id"),
        "title": row.get("title"),
        "page_url": row.get("page_url"),
        "image_url": row.get("image_url"),
        "credit": row.get("credit"),
        "label": pred.label,
        "labels": pred.labels,
        "confidence": pred.confidence,
        "top_k": pred.top_k,
        "anomaly_score": pred.anomaly_score,
        "is_anomaly": pred.is_anomaly,
        "neighbours": pred.neighbours,
        "evidence": pred.evidence or ("picture+text" if text else "picture"),
        "picture": None
        if picture is None
        else {"label": picture.get("label"), "confidence": picture.get("confidence")},
        "text": None if text is None else {"label": text.get("label"), "probs": text.get("probs")},
        "run_id": run_id,
    }


def describe(alert: Mapping[str, Any]) -> str:
    """The log line of an alert."""
    p = alert["payload"]
    conf = "-" if p.get("confidence") is None else f"{p['confidence']:.2f}"
    score = "" if p.get("anomaly_score") is None else f", anomaly score {p['anomaly_score']:.3g}"
    said = ""
    if p.get("evidence") == "picture+text" and p.get("text") and p.get("picture"):
        said = f" [text says {p['text'].get('label')}, picture says {p['picture'].get('label')}]"
    elif p.get("evidence"):
        said = f" [{p['evidence']}]"
    return f"ALERT {p['reason']}: {p['source']} {p['date']} {p.get('title')!r} -> {p.get('label')} ({conf}{score}){said} {p.get('page_url') or ''}"


class WebhookSender:
    """POSTs pending alerts as JSON; one attempt per alert per call, failures kept for later."""

    def __init__(self, url: str, timeout_s: float = 10.0, max_attempts: int = 20) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.session = requests.Session()
        self.session.headers["User-Agent"] = DEFAULT_USER_AGENT

    def close(self) -> None:
        self.session.close()

    def deliver(self, catalog: Catalog, source: str | None = None) -> tuple[int, int]:
        """Send every pending alert (oldest first); returns (delivered, failed)."""
        sent = failed = 0
        for alert in catalog.alerts(pending_only=True, source=source):
            if alert["attempts"] >= self.max_attempts:
                continue
            body = {**alert["payload"], "alert_id": alert["id"], "created_at": alert["created_at"]}
            try:
                resp = self.session.post(self.url, json=body, timeout=self.timeout_s)
                error = None if resp.ok else f"HTTP {resp.status_code}"
            except requests.RequestException as e:
                error = f"{type(e).__name__}: {str(e)[:160]}"
            catalog.alert_attempt(alert["id"], error)
            if error is None:
                sent += 1
            else:
                failed += 1
                left = self.max_attempts - alert["attempts"] - 1
                log.warning(
                    "webhook %s failed for alert %d (%s); %s",
                    self.url,
                    alert["id"],
                    error,
                    f"will retry ({left} attempts left)" if left > 0 else "giving up on it",
                )
        return sent, failed
