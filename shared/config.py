"""Settings: one class per service, all built on a common base read from ``BACKSTOP_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.httplimits import HttpLimits
from shared.natsaccess import NatsAccess


class BaseServiceSettings(BaseSettings):
    """What every service needs. Defaults work in embedded mode (``backstop up``)."""

    model_config = SettingsConfigDict(env_prefix="BACKSTOP_", extra="ignore")

    data_dir: Path = Field(
        Path("./var"), description="Where embedded NATS, SQLite and the outbox live."
    )
    nats_url: str = Field(
        "", description="NATS server URL(s), comma-separated (`nats://`, `tls://`; credentials "
        "may be given as `user:password@`); empty starts an embedded nats-server.")
    nats_user: str = Field("", description="NATS user name (with `BACKSTOP_NATS_PASSWORD`).")
    nats_password: str = Field("", description="NATS password (from the environment only).")
    nats_creds_file: Path | None = Field(
        None, description="NATS JWT credentials file (`.creds`, operator mode).")
    nats_nkey_seed_file: Path | None = Field(
        None, description="File holding the NATS nkey seed (`SU…`) to authenticate with.")
    nats_tls_ca_file: Path | None = Field(
        None, description="CA bundle the NATS server's certificate is checked against (setting "
        "any NATS TLS file turns TLS on; default: the system's trust store).")
    nats_tls_cert_file: Path | None = Field(
        None, description="Client certificate for NATS mutual TLS.")
    nats_tls_key_file: Path | None = Field(
        None, description="Private key of `BACKSTOP_NATS_TLS_CERT_FILE`.")
    database_url: str = Field("", description="SQLAlchemy URL; empty uses SQLite in the data dir.")
    log_format: str = Field("auto", description="`json`, `text`, or `auto` (JSON when not a TTY).")
    log_level: str = Field("INFO", description="Python log level name.")
    access_log: bool = Field(
        False, description="Log a line per HTTP request (ingest and ops ports): method, path "
        "(ping keys cut, no query), status, duration, client address.")
    ops_port: int = Field(
        9090, description="Port of /healthz, /readyz, /metrics, and for ingest /docs and "
        "/openapi.json (0: none).")
    ops_host: str = Field(
        "0.0.0.0", description="Address the ops endpoints listen on (`backstop up`: "
        "`127.0.0.1`).")

    secret_keys: str = Field(
        "", description="Fernet keys sealing webhook secrets at rest, comma-separated: the first "
        "seals, all open (rotation: see docs/notifier.md). Empty: `<data dir>/secret.key`, "
        "created with the embedded database; required with a shared BACKSTOP_DATABASE_URL.",
    )

    # Every HTTP port (ingest and ops) holds its clients to these.
    http_max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="Largest request line plus headers accepted (else 431; "
        "nginx allows 4 x 8 KiB).")
    http_max_headers: int = Field(100, ge=10, description="Most request headers accepted (else "
                                  "431).")
    http_header_timeout: float = Field(
        10.0, gt=0, description="Seconds a client has from connecting (or from the start of its "
        "next request) to send the request line and headers; then it is cut off (408).")
    http_body_timeout: float = Field(
        30.0, gt=0, description="Longest pause allowed while a request body arrives; then the "
        "connection is closed.")
    http_keep_alive_timeout: int = Field(
        5, ge=1, description="Seconds an idle keep-alive connection stays open (behind a load "
        "balancer: longer than its idle timeout).")

    def http_limits(self) -> HttpLimits:
        return HttpLimits(
            max_header_bytes=self.http_max_header_bytes, max_headers=self.http_max_headers,
            header_timeout=self.http_header_timeout, body_timeout=self.http_body_timeout,
            keep_alive_timeout=self.http_keep_alive_timeout,
        )

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'backstop.db').resolve()}"

    def nats_servers(self) -> str:
        return self.nats_url or "nats://127.0.0.1:4222"

    def nats_access(self) -> NatsAccess:
        return NatsAccess(
            self.nats_servers(), user=self.nats_user, password=self.nats_password,
            creds_file=self.nats_creds_file, nkey_seed_file=self.nats_nkey_seed_file,
            tls_ca_file=self.nats_tls_ca_file, tls_cert_file=self.nats_tls_cert_file,
            tls_key_file=self.nats_tls_key_file,
        )


class IngestSettings(BaseServiceSettings):
    ingest_host: str = Field("0.0.0.0", description="Address the ingest API listens on.")
    ingest_port: int = Field(8080, description="Port of the ingest API.")
    ingest_publish_timeout: float = Field(
        5.0, description="Seconds to wait for JetStream to store an upload before answering 503."
    )
    ingest_rate_limit: float = Field(
        50.0, ge=0,
        description="Requests per second allowed per token or ping key (0: no limit).",
    )
    ingest_rate_burst: int = Field(
        500, ge=1, description="Requests a token may send at once above the steady rate."
    )
    ingest_max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body accepted (else 413)."
    )
    ingest_log_excerpt_bytes: int = Field(
        16 * 1024, ge=256,
        description="Longest log excerpt kept per run; longer ones are cut with a marker.",
    )
    ingest_ping_body_limit: int = Field(
        10_000, ge=0,
        description="Bytes of a ping's POST body kept as its log (Healthchecks' PING_BODY_LIMIT).",
    )
    ingest_token_cache_seconds: float = Field(
        5.0, ge=0,
        description="How long a token or ping key lookup is cached; a revoked token stops "
        "working within this time.",
    )
    ingest_auth_failure_limit: float = Field(
        5.0, ge=0,
        description="Failed authentications per second allowed per client address (IPv6: per "
        "/64) before its lookups are answered 429 (0: no limit).",
    )
    ingest_auth_failure_burst: int = Field(
        50, ge=1, description="Failed authentications a client address may have at once above "
        "the steady rate.",
    )


class DirectorySettings(BaseServiceSettings):
    """The LDAP directory the notifier takes the customer side's recipients from and the
    evaluator the accounts' quota thresholds; empty URL: both come from the database."""

    ldap_url: str = Field(
        "",
        description="LDAP server URL(s), comma-separated; empty: recipients, preferences and "
        "thresholds come from the database only.",
    )
    ldap_bind_dn: str = Field("", description="DN to bind as (empty: anonymous bind).")
    ldap_bind_password: str = Field("", description="Password of the bind DN.")
    ldap_account_base: str = Field(
        "ou=accounts,ou=backup,ou=services,dc=example,dc=org",
        description="Search base of backup account entries.",
    )
    ldap_account_filter: str = Field(
        "(&(objectClass=sstBackupAccount)(uid={account}))",
        description="Filter finding an account entry; `{account}` (name), `{account_id}`, "
        "`{customer}`, `{reseller}` are replaced by escaped values.",
    )
    ldap_person_base: str = Field(
        "ou=people,dc=example,dc=org", description="Search base of person entries."
    )
    ldap_person_filter: str = Field(
        "(&(objectClass=inetOrgPerson)(uid={uid}))",
        description="Filter finding the owner; `{uid}` is the escaped `sstBelongsToPersonUID`.",
    )
    ldap_attr_warning_on: str = Field(
        "sstBackupWarningOn", description="Attribute: is the customer told at all (TRUE/FALSE)."
    )
    ldap_attr_medium: str = Field(
        "sstNotificationWarningMedium", description="Attribute: notification medium (`mail`)."
    )
    ldap_attr_owner: str = Field(
        "sstBelongsToPersonUID", description="Attribute: uid of the person owning the account."
    )
    ldap_attr_mail: str = Field("mail", description="Attribute holding e-mail addresses.")
    ldap_attr_quota_percent: str = Field(
        "backstopQuotaPercent", description="Attribute: the account's quota threshold in percent "
        "(`quota_percent`; a per-account database override beats it, it beats customer, "
        "reseller and default values).")
    ldap_cache_seconds: float = Field(60.0, description="How long LDAP answers are reused.")
    ldap_negative_cache_seconds: float = Field(
        30.0, description="How long an LDAP 'no entry for this account' answer is reused.",
    )
    ldap_pool_size: int = Field(4, description="LDAP connections kept open.")
    ldap_timeout: float = Field(5.0, description="Seconds per LDAP connect/operation.")
    ldap_write_bind_dn: str = Field(
        "", description="DN allowed to change account entries, for self-care preferences (empty: "
        "preferences kept in the directory are read-only).")
    ldap_write_bind_password: str = Field(
        "", description="Password of `BACKSTOP_LDAP_WRITE_BIND_DN` (from the environment only).")


class EvaluatorSettings(DirectorySettings):
    evaluator_replica_id: str = Field(
        "", description="This replica's name in the partition leases; empty: host name + pid."
    )
    evaluator_lease_seconds: float = Field(
        15.0, description="How long a partition lease lasts unless renewed (renewed every third)."
    )
    evaluator_batch: int = Field(
        256, description="Ingest events applied per database transaction, per partition."
    )
    evaluator_refresh_seconds: float = Field(
        10.0, description="How often thresholds and newly created accounts are re-read."
    )
    evaluator_processed_retention_hours: float = Field(
        72.0, description="How long applied event ids are kept to recognise redeliveries."
    )


class NotifierSettings(DirectorySettings):
    smtp_host: str = Field("", description="SMTP server; empty writes .eml files to the outbox.")
    smtp_port: int = Field(25, description="SMTP port.")
    smtp_username: str = Field("", description="SMTP user name (empty: no AUTH).")
    smtp_password: str = Field("", description="SMTP password (from the environment only).")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "none", description="`none`, `starttls` or `tls` (implicit TLS, usually port 465).")
    smtp_ca_file: Path | None = Field(
        None, description="CA bundle the SMTP server's certificate is checked against "
        "(default: the system's trust store).")
    mail_from: str = Field("backstop@localhost", description="Default sender address.")
    outbox_dir: Path | None = Field(None, description="Outbox folder; default `<data dir>/outbox`.")
    public_url: str = Field(
        "http://localhost:8081", description="Base URL of the Backstop portal, linked from alerts "
        "(`/alerts/<fingerprint>`)."
    )
    # Policy.
    repeat_interval_seconds: float = Field(
        4 * 3600.0,
        description="Default reminder interval for alerts that stay firing (0: no reminders); "
        "overridable per reseller/customer.",
    )
    group_window_seconds: float = Field(
        0.0, description="Group one customer's firing alerts within this window into one e-mail "
        "(0: off)."
    )
    # Delivery.
    give_up_after_seconds: float = Field(
        24 * 3600.0, description="Keep retrying a delivery this long, then dead-letter it."
    )
    retry_base_seconds: float = Field(2.0, description="First retry delay (doubles each time).")
    retry_max_seconds: float = Field(3600.0, description="Longest delay between two retries.")
    webhook_timeout: float = Field(15.0, description="Seconds a webhook receiver has to answer.")
    webhook_allow_networks: str = Field(
        "", description="Networks (CIDRs, comma-separated) webhooks may reach although they are "
        "loopback, private or link-local, e.g. an on-premises ticket system's `10.1.2.0/24`. "
        "Empty: public addresses only.",
    )
    delivery_concurrency: int = Field(32, description="Deliveries in flight at once.")
    lease_seconds: float = Field(
        120.0, description="A delivery claimed by a replica that died is retried after this."
    )
    notifier_replica_id: str = Field(
        "", description="This notifier's name, stable across restarts: a restarted replica "
        "takes back its unfinished deliveries at once instead of after the lease. Empty: the "
        "host name. Two running replicas must never share one."
    )

    def outbox(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"


class PortalSettings(DirectorySettings):
    # --- the portal web app (services/portal) ---------------------------------------------
    portal_host: str = Field("0.0.0.0", description="Address the portal (web pages) listens on.")
    portal_port: int = Field(8081, description="Port of the portal's web pages (0: no portal).")
    portal_session_secret: str = Field(
        "", description="Key signing the portal's session and CSRF cookies (from the "
        "environment only). Empty: derived from the first secret key (BACKSTOP_SECRET_KEYS or "
        "`<data dir>/secret.key`), so replicas sharing those keys share sessions.")
    portal_session_hours: float = Field(
        12.0, gt=0, description="How long a portal login lasts.")
    portal_secure_cookies: bool = Field(
        False, description="Mark the portal's cookies `Secure` (browser sends them over HTTPS "
        "only): set it when the portal is served through TLS.")
    portal_login_failure_burst: int = Field(
        10, ge=1, description="Failed portal logins a client address, and separately an "
        "account, may have at once; then logins are refused (429) until the budget refills.")
    portal_login_failures_per_minute: float = Field(
        2.0, ge=0, description="How fast that budget refills: failed logins per minute per "
        "client address and per account (0: no limit).")
    portal_reseller_hosts: str = Field(
        "", description="Host names that show a reseller's branding on the login page, as "
        "`host=reseller` pairs (reseller id or name), comma-separated, e.g. "
        "`backup.msp.example=My MSP`.")
    portal_ldap_url: str = Field(
        "", description="LDAP server URL(s) users may log in through (bind as the user), "
        "comma-separated; empty: portal passwords only.")
    portal_ldap_bind_dn: str = Field(
        "", description="DN that looks the user's entry up before the user's own bind (empty: "
        "anonymous search).")
    portal_ldap_bind_password: str = Field(
        "", description="Password of `BACKSTOP_PORTAL_LDAP_BIND_DN` (from the environment "
        "only).")
    portal_ldap_user_base: str = Field(
        "ou=people,dc=example,dc=org", description="Search base of the users' entries.")
    portal_ldap_user_filter: str = Field(
        "(&(objectClass=inetOrgPerson)(mail={login}))",
        description="Filter finding the entry of the address typed at login; `{login}` is "
        "replaced by the escaped address.")
    portal_ldap_role_attribute: str = Field(
        "", description="Attribute of the user's entry granting a portal role to users with "
        "no `backstop users` row: `operator`, `reseller:<reseller id>` or "
        "`customer:<reseller id>:<customer id>`, optionally followed by `:read-only`. "
        "Empty: only users added with `backstop users add` may log in through LDAP.")
    portal_ldap_timeout: float = Field(5.0, gt=0, description="Seconds per LDAP connect/bind.")
    # --- end of the portal web app's settings -------------------------------------------

    # --- run history (services/portal/history) and backup-state metrics -------------------
    history_retention_days: int = Field(
        90, ge=1, description="Days of runs, day cells and usage the run history keeps; older "
        "rows are pruned in batches.")
    history_prune_interval_seconds: float = Field(
        3600.0, gt=0, description="How often the run history prunes rows past the retention.")
    history_prune_batch: int = Field(
        5000, ge=1, description="Rows deleted per prune statement (the table is never locked "
        "for long).")
    history_log_excerpt_bytes: int = Field(
        16 * 1024, ge=256, description="Longest log excerpt kept per run (its tail: where the "
        "error is); appended `/log` pings are cut to the same length.")
    history_batch: int = Field(
        256, ge=1, description="Ingest events the run history applies per database transaction.")
    metrics_job_last_success: bool = Field(
        False, description="Serve `backstop_job_last_success_timestamp_seconds` per job on "
        "/metrics (one series per job: for small installations).")


class ExecutorSettings(BaseServiceSettings):
    executor_history_executions: int = Field(
        40, ge=1, description="Executions kept per plan in the history (older ones are removed "
        "with their tasks and files).")
    executor_parallel: int = Field(
        4, ge=1, description="Tasks a plan execution runs at once (each on a different target) "
        "unless the plan says otherwise.")
    executor_script_timeout: float = Field(
        300.0, gt=0, description="Seconds a pre/post plan or task script may run unless the "
        "plan says otherwise; then it is stopped and counts as failed.")
    executor_script_output_chars: int = Field(
        64 * 1024, ge=1024, description="Characters of a script's output kept in the history "
        "(the first and last halves).")
    # The service around the flow (services/executor/service.py): replicas, triggers, leases.
    executor_labels: str = Field(
        "", description="This replica's labels, `key=value` comma-separated (at most 4), e.g. "
        "`site=berlin`: plans whose `replicas` asks for labels run only on replicas having "
        "them all.")
    executor_max_plans: int = Field(
        8, ge=1, description="Plan executions one replica runs at once; further triggers wait "
        "in the stream for a replica with room.")
    executor_lease_seconds: float = Field(
        30.0, ge=3, description="How long a target lease and a replica's presence last unless "
        "renewed (every third): a dead replica's targets are free, and its quiesced targets "
        "and executions are recovered, within this time.")
    executor_refresh_seconds: float = Field(
        10.0, gt=0, description="How often the scheduler reads the enabled plans again.")


class EmbeddedSettings(IngestSettings, EvaluatorSettings, NotifierSettings, PortalSettings,
                       ExecutorSettings):
    """``backstop up`` runs everything in one process, so it reads every service's settings."""

    # The ops endpoints are for the operator, not the clients: local only unless asked.
    ops_host: str = Field("127.0.0.1", description="Address the ops endpoints listen on.")
