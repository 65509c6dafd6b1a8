"""What lives as long as the function instance, wired once from the settings: the mapping rules,
the secrets, the Novu client and its session, the courier with its ledger and rate budgets, and the
workflow catalog. Building it announces the instance's risky settings in the log."""

from __future__ import annotations

import time

from segment_novu import config, logs
from segment_novu.delivery import rate_limits
from segment_novu.delivery.courier import Budgets, Courier
from segment_novu.delivery.ledger import build_ledger
from segment_novu.mapping import rules
from segment_novu.novu.client import NovuClient
from segment_novu.novu.executor import Executor
from segment_novu.novu.workflows import FETCH_SECONDS, WorkflowCatalog
from segment_novu.secrets import SecretSource


class Instance:
    def __init__(self, settings: config.Settings):
        self.settings = settings
        self.rules = rules.load(settings.mapping_file)

        def secret(configured: str, variable: str) -> SecretSource:
            return SecretSource(
                configured,
                variable=variable,
                ttl_seconds=settings.secret_ttl_seconds,
                # A secret read happens inside a request: it must leave time to answer Segment.
                timeout_seconds=min(2.0, settings.deadline_seconds / 2),
                emulator_host=settings.secret_manager_emulator_host,
            )

        self.novu_key = secret(settings.novu_api_key, "NOVU_API_KEY") if settings.novu_api_key else None
        self.shared_secrets = [
            secret(value, variable)
            for value, variable in zip(
                settings.segment_shared_secrets, ("SEGMENT_SHARED_SECRET", "SEGMENT_SHARED_SECRET_PREVIOUS")
            )
        ]
        self.auth_token = (
            secret(settings.segment_auth_token, "SEGMENT_AUTH_TOKEN") if settings.segment_auth_token else None
        )
        self.client = NovuClient(
            settings.novu_api_url,
            self.novu_key,
            timeout_seconds=settings.novu_timeout_seconds,
            pool_size=settings.max_concurrency * 2,
        )
        ledger = build_ledger(
            settings.redis_url,
            max_entries=settings.ledger_max_entries,
            ttl_seconds=settings.ledger_ttl_seconds,
            timeout_seconds=settings.ledger_timeout_seconds,
        )
        bucket_options = {"timeout_seconds": settings.ledger_timeout_seconds}
        budgets = Budgets(
            rate_limits.build_bucket(settings.redis_url, "trigger", settings.trigger_rate_per_second, **bucket_options),
            rate_limits.build_bucket(settings.redis_url, "config", settings.config_rate_per_second, **bucket_options),
        )
        self.courier = Courier(Executor(self.client), ledger, budgets, max_concurrency=settings.max_concurrency)
        self.catalog = (
            WorkflowCatalog(self.client, ttl_seconds=settings.workflow_cache_seconds)
            if settings.workflow_discovery else None
        )
        self._announce()
        self._report_missing_workflows()

    def _announce(self) -> None:
        settings = self.settings
        logs.info(
            "bridge ready",
            novuApiUrl=settings.novu_api_url,
            dryRun=settings.dry_run,
            mapping=self.rules.source,
            ledger="redis" if settings.redis_url else "memory",
        )
        if not self.shared_secrets and not self.auth_token:
            logs.warning(
                "SEGMENT_SHARED_SECRET is not set: unsigned requests are accepted from anyone who knows the URL"
            )
        if settings.accept_first_element_signature and self.shared_secrets:
            logs.warning(
                "ACCEPT_FIRST_ELEMENT_SIGNATURE is on: a batch is accepted when its first event is signed,"
                " so events appended to a signed body reach Novu unproven"
            )
        if self.novu_key is None and not settings.dry_run:
            logs.warning("NOVU_API_KEY is not set: events that need a Novu call will be answered 500")

    def _report_missing_workflows(self) -> None:
        if self.catalog is None or not self.rules.workflows:
            return
        known = self.catalog.refresh(time.monotonic() + FETCH_SECONDS)
        missing = sorted(self.rules.workflows - known) if known is not None else []
        if missing:
            logs.error(
                "the mapping names workflows Novu does not have: their events will be rejected (400)",
                mapping=self.rules.source,
                workflows=missing,
            )
