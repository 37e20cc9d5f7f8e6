"""The database: SQLite by default, PostgreSQL from DATABASE_URL, with the timeouts and the
connection pool of web processes (asgi.py sets their variables)."""

import dj_database_url

from .environment import DATA_DIR, env, env_bool

# Web processes (asgi.py sets it): once the database failed to answer a connect, every access
# in the next few seconds fails at once, so a page answers 503 in one timeout, not one per query.
DB_DOWN_SECONDS = float(env("DB_DOWN_SECONDS", "0"))
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'opsconsole.sqlite3'}"),
        conn_max_age=int(env("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: WAL lets readers run
    # beside the writer; IMMEDIATE avoids lock-upgrade deadlocks between writers.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-opsconsole.sqlite3")}
    if env_bool("DB_POOL", False):
        # Web processes (asgi.py sets DB_POOL=1): each request's sync code runs on a fresh thread; their
        # connections are kept between requests, as the pool below keeps PostgreSQL's (opsconsole/sqlite).
        DATABASES["default"]["ENGINE"] = "opsconsole.sqlite"
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # A database that does not answer must not hold a process for long: connect timeout, and a
    # statement timeout for web processes (asgi.py sets DB_STATEMENT_TIMEOUT_MS; workers run long jobs).
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["connect_timeout"] = int(env("DB_CONNECT_TIMEOUT", "5"))
    if DB_DOWN_SECONDS:  # after a failed connect, fail at once for this long (opsconsole/postgresql)
        DATABASES["default"]["ENGINE"] = "opsconsole.postgresql"
    if int(env("DB_STATEMENT_TIMEOUT_MS", "0")):
        options["options"] = f"-c statement_timeout={int(env('DB_STATEMENT_TIMEOUT_MS'))}"
    if env_bool("DB_POOL", False):
        # Web processes (asgi.py sets DB_POOL=1): under ASGI every request's sync code runs on a fresh thread, so
        # per-thread persistent connections (CONN_MAX_AGE) would reconnect per request; a pool keeps them.
        # Not for Celery's prefork children: a pool's threads do not survive fork.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        options["pool"] = {
            "min_size": 1,
            "max_size": int(env("DB_POOL_MAX", "16")),
            "timeout": float(env("DB_POOL_TIMEOUT", "10")),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
