# One image for every service; the command picks the service (`backstop run ingest`, …).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 backstop
USER 10001
ENV BACKSTOP_LOG_FORMAT=json BACKSTOP_DATA_DIR=/tmp/backstop
ENTRYPOINT ["backstop"]
CMD ["run", "ingest"]
