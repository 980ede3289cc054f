from celery import shared_task

from common.auth import token_purge_expired
from common.jobs import requeue_stale_jobs as sweep


@shared_task(name="common.tasks.requeue_stale_jobs")
def requeue_stale_jobs() -> dict[str, int]:
    return sweep()


@shared_task(name="common.tasks.purge_expired_tokens")
def purge_expired_tokens() -> int:
    return token_purge_expired()
