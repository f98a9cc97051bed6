"""gotosync's engine: decides and performs provisioning; knows nothing of azure.functions."""
