import pytest

pytest_plugins = [
    "tests.fixtures.azurite",
    "tests.fixtures.graph",
    "tests.fixtures.goto",
    "tests.fixtures.world",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, at the tests' root: pytest reads options only from its first conftest files.
    parser.addoption(
        "--console-screenshots",
        default=None,
        metavar="DIR",
        help="the console's browser tests save a screenshot of each page into DIR (docs/console.md)",
    )
