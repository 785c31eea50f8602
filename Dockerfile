FROM python:3.11-slim
WORKDIR /srv/dsr
# Production refuses to start without DSR_SECRET_KEY, DSR_SMTP_HOST and DSR_SMTP_FROM.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DSR_ENV=production
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY alembic ./alembic
RUN pip install --no-cache-dir -e . && useradd --system dsr && chown -R dsr /srv/dsr
USER dsr
EXPOSE 8000
CMD ["dsr", "serve", "--host", "0.0.0.0", "--port", "8000"]
