# CPU image of the embedded default (ONNX Runtime, SQLite under /data, shipped model).
#   docker build -t authentiq . && docker run -p 8000:8000 -v authentiq-data:/data authentiq
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    AUTHENTIQ_DATABASE_URL=sqlite:////data/authentiq.db AUTHENTIQ_BLOB_DIR=/data/blobs \
    AUTHENTIQ_REFERENCE_SEED_DIR=/app/reference_data/items
COPY pyproject.toml README.md ./
COPY authentiq ./authentiq
COPY engines/*.onnx ./engines/
COPY reference_data ./reference_data
RUN pip install --no-cache-dir ".[postgres,heic]" && useradd --uid 10001 authentiq \
    && mkdir /data && chown authentiq /data
USER authentiq
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["authentiq", "serve", "--host", "0.0.0.0", "--port", "8000", \
     "--model", "/app/engines/authentiq-default.int8-cpu.onnx"]
