from celery import shared_task

from common.jobs import requeue_stale_jobs as sweep


@shared_task(name="common.tasks.requeue_stale_jobs")
def requeue_stale_jobs() -> dict[str, int]:
    return sweep()
