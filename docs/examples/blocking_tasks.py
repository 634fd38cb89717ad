"""Synchronous task code (Celery, RQ, cron, a Django view) sharing one BlockingInkit."""

import atexit
from concurrent.futures import ThreadPoolExecutor

from inkit_async import BlockingInkit, InkitError, NotFoundError

# One client per process, made at import (before a prefork worker forks is fine: each
# process starts its own loop thread on first use). Every thread's calls share its
# connection pool and its throttle.
inkit = BlockingInkit(timeout=10, max_retries=3)  # INKIT_API_TOKEN, INKIT_BASE_URL
atexit.register(inkit.close)  # or rely on it being closed at exit; close() is idempotent


def report_status(batch_id: str) -> str:
    """A task: what a Celery @app.task or an RQ job would be, plain blocking code."""
    try:
        batch = inkit.batch.get(batch_id)
    except NotFoundError:
        return f"{batch_id}: no such batch"
    except InkitError as error:  # the API failed after the retries: let the queue retry
        return f"{batch_id}: failed ({type(error).__name__})"
    return f"{batch_id}: {batch.status} ({batch.progress.completed}/{batch.total})"


def nightly_report() -> list[str]:
    """A cron job: every batch of a listing, then a wait for one of them."""
    names = [batch.name or batch.id for batch in inkit.batch.list(search="invoice")]
    finished = inkit.batch.wait("rb_9HjKlMnOpQrStUvWxYzAbC", poll_interval=0.5, timeout=60)
    return [f"{len(names)} invoice batches", f"rb_9HjKlMnOpQrStUvWxYzAbC: {finished.status}"]


def main() -> None:
    batch_ids = ["rb_6WtDgF7RGqdS5Uzea9neZJ", "rb_2KmPqR8sTuVwXyZaBcDeFg", "rb_missing"]
    # A threaded worker (celery --pool threads, gunicorn --threads): tasks run at once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for line in pool.map(report_status, batch_ids):
            print(line)
    for line in nightly_report():
        print(line)
    # Results as they arrive, and leaving early: the remaining lookups stop at once.
    for batch_id, result in inkit.batch.iter_many(batch_ids):
        print("first answer:", batch_id, type(result).__name__)
        break


if __name__ == "__main__":
    main()
