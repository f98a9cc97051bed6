"""Composition root of the Function app (Python v2 programming model): registers the
Blueprints; holds no logic."""

import azure.functions as func

from graph_webhook import bp as graph_webhook_bp
from sync_timer import bp as sync_timer_bp

app = func.FunctionApp()
app.register_functions(sync_timer_bp)
app.register_functions(graph_webhook_bp)
