"""The parts flow control is made of, each a small module with one job.

``_throttle.Throttle`` composes them: ``curve`` (the sending rate after a cut, as a
function of time), ``estimate`` (the server's rate, fitted to the client's send times),
``pacer`` (when the next request may leave at a rate), ``breaker`` (pauses and the probe
after each) and ``budget`` (how much retrying). Every part is plain state and pure
functions of the time it is given: none reads a clock, sleeps or touches the event loop,
so each is unit-tested with plain numbers (``tests/test_flow_*.py``).
"""
