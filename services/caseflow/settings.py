"""Caseflow's settings (env prefix CASEFLOW_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CASEFLOW_", extra="ignore")

    service_name: str = "caseflow"
    # Case numbers start with the matter's division, or this one when the matter names none.
    default_division: str = Field(default="320800", pattern=r"^\d{6}$")
    # Case numbers are reserved from the database this many at a time per process (see case_numbers).
    case_number_block: int = Field(default=20, ge=1, le=1000)
    # Local day boundaries for "received on", deadlines and the supervision timer.
    timezone: str = "Asia/Shanghai"
    # The public progress page a printed 办件进度单's QR code points to: {this}/{case_no}?code={query code}.
    public_progress_url: str = Field(default="http://localhost:8000/api/v1/caseflow/progress", max_length=200)
    # Supervision: yellow when this many working days (or fewer) remain; red when overdue.
    yellow_at_days: int = Field(default=2, ge=0)
    supervision_interval_seconds: float = Field(default=60.0, gt=0)
    supervision_enabled: bool = True
    # Uploaded materials: "local" directory (default .data/caseflow-blobs) or an "s3"-compatible
    # object store (MinIO, OSS, COS, S3) at s3_endpoint_url; and the size limit.
    blob_store: Literal["local", "s3"] = "local"
    blob_dir: str = ""
    s3_endpoint_url: str = ""
    s3_bucket: str = "caseflow-materials"
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # The public progress page: at most this many tries at one case number's query code per window
    # (counted in the database, shared by replicas); past it, 429 with Retry-After.
    query_code_attempts: int = Field(default=10, ge=1, le=1000)
    query_code_window_seconds: int = Field(default=3600, ge=1, le=86400)
    # E-licences given as materials are checked with the licence service on submission and
    # resubmission (POST {licence_url}/checks, HMAC-signed under licence_key_id; ADR 0016): "http",
    # or "sandbox", which holds the licences registered in it (development and tests).
    licence_adapter: Literal["sandbox", "http"] = "sandbox"
    licence_url: str = ""
    licence_key_id: str = "caseflow"
    licence_secret: SecretStr = SecretStr("")
    licence_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    licence_sandbox_failure_rate: float = Field(default=0.0, ge=0, le=1)
    # 秒批 sampling (ADR 0027): whether an automatic decision goes to an officer for review is drawn
    # from a hash of this secret and the case number (deterministic for a seed; unset: random per start).
    instant_sample_seed: SecretStr | None = None
    # Consumers of services that may not run yet: on when licence / express publish their events.
    consume_licence_events: bool = False
    consume_express_events: bool = False
    # Department systems' pushes forwarded by exchange (decisions on cases, progress of mirrored
    # cases; ADR 0021): on where exchange runs (platform.toml).
    consume_department_events: bool = False
    # payment's paid / refunded orders (网上缴费, ADR 0026): on where payment runs (platform.toml).
    consume_payment_events: bool = False
    # Issued licences applied at once when a backlog is fetched (each its own transaction; licences
    # of different cases are independent, a licence is recorded once by its identifier, and the
    # system's deliver is version-checked like any step). At 50 approvals/s one at a time fell far
    # behind (docs/benchmarks.md, Approve → shipment).
    licence_consumer_concurrency: int = Field(default=4, ge=1, le=64)
    # The outbox relay's linger (kit default 0.1 s): an approval, the licence's delivery request
    # and every applicant-facing step are awaited by another service; at 0.1 s each hop of approve →
    # licence → delivery → shipment waited up to 100 ms (docs/benchmarks.md, Approve → shipment).
    # Under load a batch still gathers what committed meanwhile.
    relay_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    # A shipment still "created" (the carrier has not picked it up) this long after its order is a
    # supervision anomaly (delivery_stuck / pickup_stuck), raised by the supervision timer.
    express_stuck_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # Applicant notifications (SMS / WeChat template messages): "sandbox" keeps what it "sent"
    # readable at /sandbox/notifications (dev only); "http" posts to the SMS gateway at sms_gateway_url.
    notification_adapter: Literal["sandbox", "http"] = "sandbox"
    sms_gateway_url: str = ""
    sms_gateway_key_id: str = ""
    sms_gateway_secret: SecretStr = SecretStr("")
    notification_interval_seconds: float = Field(default=1.0, gt=0)
    # Whether this process sends notifications (like supervision_enabled: API replicas may leave it
    # to one worker; the rows wait in the table, nothing is lost).
    notification_dispatch_enabled: bool = True
