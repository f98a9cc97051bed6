"""The `gotosync` command line, an entrance beside the Function app's (sync_timer/,
graph_webhook/, admin_api/, console/): it only turns argv into calls of shared/ and the results
into terminal output. Entry point: cli.main:main."""
