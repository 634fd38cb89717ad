"""Errors: one class per kind of failure, all under InkitError."""

import asyncio

from inkit_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncInkit,
    AuthenticationError,
    InkitError,
    NotFoundError,
    RateLimitError,
)


async def describe(client: AsyncInkit, batch_id: str) -> str:
    try:
        batch = await client.batch.get(batch_id)
    except NotFoundError:
        return f"{batch_id}: no such batch"
    except AuthenticationError as error:
        return f"check INKIT_API_TOKEN: {error.message}"
    except RateLimitError as error:
        return f"rate limited; the server asked for {error.retry_after} s"
    except APIStatusError as error:
        # Any other non-2xx answer: the status, the API's message, the request id.
        return f"{error.status_code} (request {error.request_id}): {error.message}"
    except APITimeoutError:
        return "timed out after every retry"
    except APIConnectionError as error:
        return f"no response: {error}"
    return f"{batch.id}: {batch.status}"


async def main() -> None:
    async with AsyncInkit(max_retries=2) as client:
        print(await describe(client, "rb_6WtDgF7RGqdS5Uzea9neZJ"))
        print(await describe(client, "rb_missing"))
        try:
            await client.batch.get("")  # bad input fails before anything is sent
        except ValueError as error:
            print("ValueError:", error)
        try:
            await client.batch.get("rb_missing")
        except InkitError as error:  # the root of everything the SDK raises
            print(type(error).__name__, "-", error)


asyncio.run(main())
