pytest_plugins = [
    "tests.fixtures.azurite",
    "tests.fixtures.graph",
    "tests.fixtures.goto",
    "tests.fixtures.world",
]
