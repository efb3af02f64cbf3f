pip install errorkit PyJWT "uvicorn[standard]"
