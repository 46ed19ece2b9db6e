FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
# setup.py copies the OpenAPI document into the package: /openapi.yaml, /openapi.json and /docs serve it.
COPY openapi ./openapi
COPY gateway ./gateway
RUN pip install --no-cache-dir . && useradd --create-home gateway && mkdir /data && chown gateway /data
USER gateway
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health')"
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
