"""Helpers shared by several test modules; fixtures live in conftest.py. Test modules import from here,
never from one another."""
