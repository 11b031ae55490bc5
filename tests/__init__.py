"""The test suite. A package so that test modules import their fakes and helpers as
``tests.fakes.*`` and ``tests.support.*`` (pytest puts the repository root on ``sys.path``),
never from ``conftest`` or another test module."""
