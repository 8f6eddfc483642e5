# Wafer Playground as one app replica for a team server (compose.yaml runs two behind nginx).
# Build: docker build -t wafer-playground .   Run alone: docker run -p 8501:8501 wafer-playground
FROM python:3.11-slim-bookworm

# g++/make only for the local engine's one-time llama-server build; a team server that locks
# visitors to Wafer (WAFER_ALLOWED_ENDPOINTS=wafer) never starts it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ make ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir uv \
    && useradd --create-home --uid 10001 app

WORKDIR /app
ENV UV_PROJECT_ENVIRONMENT=/app/.venv UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 \
    WAFER_PLAYGROUND_CACHE=/home/app/.cache/wafer-playground
# Dependencies first (cached while only the app's code changes), then the project.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev && chown -R app:app /app

USER app
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
    CMD ["/app/.venv/bin/python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2).read() != b'ok')"]
CMD ["/app/.venv/bin/streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
