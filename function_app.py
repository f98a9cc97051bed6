"""Composition root of the Function app (Python v2 programming model): registers the
Blueprints; holds no logic."""

import azure.functions as func

from sync_timer import bp as sync_timer_bp

app = func.FunctionApp()
app.register_functions(sync_timer_bp)
