# The console's image: web (uvicorn), worker and beat all run from it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OPSCONSOLE_DATA_DIR=/data
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /app opsconsole && mkdir -p /data && chown opsconsole /data \
    && OPSCONSOLE_ENV=development python manage.py collectstatic --noinput --verbosity 0
USER opsconsole
EXPOSE 8000
CMD ["uvicorn", "opsconsole.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--workers", "2", "--timeout-graceful-shutdown", "10"]
