from celery import shared_task

from common.auth import token_purge_expired
from common.idempotency import idempotency_keys_purge
from common.jobs import requeue_stale_jobs as sweep
from common.uploads import upload_tmp_sweep


@shared_task(name="common.tasks.requeue_stale_jobs")
def requeue_stale_jobs() -> dict[str, int]:
    return sweep()


@shared_task(name="common.tasks.purge_expired_tokens")
def purge_expired_tokens() -> int:
    return token_purge_expired()


@shared_task(name="common.tasks.sweep_upload_tmp")
def sweep_upload_tmp() -> int:
    return upload_tmp_sweep()


@shared_task(name="common.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    return idempotency_keys_purge()
