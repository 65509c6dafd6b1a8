"""Baseline: the floor. Parses the JSON body and answers 200 ``{}``, calling nothing.

What functions-framework, gunicorn, Flask and ``json.loads`` cost on their own, served exactly like
the bridge: ``functions-framework --target=handler --source=bench/baseline_floor.py``.
"""

import json

import functions_framework


@functions_framework.http
def handler(request):
    json.loads(request.get_data())
    return "{}", 200, {"Content-Type": "application/json"}
