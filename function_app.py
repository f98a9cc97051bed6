"""Composition root of the Function app (Python v2 programming model): registers the
Blueprints; holds no logic."""

import azure.functions as func

from admin_api import bp as admin_api_bp
from console import bp as console_bp
from graph_webhook import bp as graph_webhook_bp
from shared import telemetry
from sync_timer import bp as sync_timer_bp
from sync_timer.retention import bp as retention_bp

telemetry.configure_from_env()  # Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set

app = func.FunctionApp()
app.register_functions(sync_timer_bp)
app.register_functions(graph_webhook_bp)
app.register_functions(retention_bp)
app.register_functions(admin_api_bp)
app.register_functions(console_bp)
