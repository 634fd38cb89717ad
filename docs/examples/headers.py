"""Headers on every request, and one more for one call."""

import asyncio

from inkit_async import AsyncInkit


async def main() -> None:
    gateway_key = "gw_example_key_0123456789"  # say, from your secret store
    async with AsyncInkit(default_headers={"Authorization": f"Bearer {gateway_key}"}) as client:
        print(client.default_headers)  # names only: the values may be credentials
        # One more header, for one call (the variant shares the pool, slots and throttle):
        traced = client.with_options(default_headers={"X-Debug-Trace": "1"})
        print((await traced.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")).status)


asyncio.run(main())
