pip install opentelemetry-sdk opentelemetry-instrumentation-asgi
