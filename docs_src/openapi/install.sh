# kit.schemas() for a Starlette app: errorkit with PyYAML
pip install "errorkit[openapi]"
