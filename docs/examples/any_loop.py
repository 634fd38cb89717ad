"""One AsyncInkit made at import, used by successive event loops and after a fork."""

import asyncio
import os

from inkit_async import AsyncInkit

# Made at import, where no event loop runs: each loop that uses it gets a connection
# pool of its own, closed when that loop ends (asyncio.run closes it on the way out).
inkit = AsyncInkit(timeout=10)  # INKIT_API_TOKEN, INKIT_BASE_URL


async def status(batch_id: str) -> str:
    """One lookup: what a task, a view or a script step does."""
    batch = await inkit.batch.get(batch_id)
    return f"{batch.id}: {batch.status}"


def main() -> None:
    """A script (or a Celery task) that calls asyncio.run each time: one client for all."""
    print(asyncio.run(status("rb_6WtDgF7RGqdS5Uzea9neZJ")))
    print(asyncio.run(status("rb_2KmPqR8sTuVwXyZaBcDeFg")))
    # gunicorn --preload and multiprocessing fork a process that used the client: the
    # child opens connections of its own and never touches the parent's.
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            print("child", asyncio.run(status("rb_9HjKlMnOpQrStUvWxYzAbC")))
            code = 0
        finally:
            os._exit(code)
    _, code = os.waitpid(pid, 0)
    print("child exit code:", os.waitstatus_to_exitcode(code))
    print(asyncio.run(status("rb_6WtDgF7RGqdS5Uzea9neZJ")))
    asyncio.run(inkit.aclose())


if __name__ == "__main__":
    main()
