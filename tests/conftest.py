pytest_plugins = ["tests.fixtures.azurite"]
