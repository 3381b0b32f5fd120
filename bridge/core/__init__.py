"""The pure core: Tilt's state and how it changes, the log buffer, log queries, derived
conditions and the answer presenters. No I/O, no clock, no anyio: everything here is a
function of its arguments (``now`` is passed in), so it is unit-tested directly."""
