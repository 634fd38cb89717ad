"""What the unit and functional tests share: constants, recorders, and the servers they start.

Nothing here is collected as a test; fixtures and hooks live in the conftest.py files.
"""
