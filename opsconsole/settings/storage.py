"""Storage (apps/storage, docs/storage.md): uploads to S3, presigned links, timeouts, prices."""

from .environment import env, env_list

# Uploads stream to S3 multipart: a part is STORAGE_PART_SIZE bytes (S3's floor is
# 5 MiB) and one upload holds at most STORAGE_UPLOAD_CONCURRENCY + 1 parts in memory.
STORAGE_PART_SIZE = max(5 * 1024 * 1024, int(env("STORAGE_PART_SIZE", str(5 * 1024 * 1024))))
STORAGE_UPLOAD_CONCURRENCY = max(1, int(env("STORAGE_UPLOAD_CONCURRENCY", "4")))
# Uploads straight to the bucket (connections with direct_uploads) hold no part in a web process, so
# their parts are bigger and more go at once: 8 MiB (boto3 TransferManager's part size), 6 in flight
# (a browser opens at most 6 HTTP/1.1 connections to one host; S3 endpoints speak HTTP/1.1).
STORAGE_DIRECT_PART_SIZE = max(5 * 1024 * 1024, int(env("STORAGE_DIRECT_PART_SIZE", str(8 * 1024 * 1024))))
STORAGE_DIRECT_UPLOAD_CONCURRENCY = max(1, int(env("STORAGE_DIRECT_UPLOAD_CONCURRENCY", "6")))
# What an upload (streamed or direct) may be: at most this many bytes (S3's own limit is 5 TiB), and a
# content type matching one of these patterns (e.g. "image/*,text/csv"; empty = any).
STORAGE_UPLOAD_MAX_BYTES = int(env("STORAGE_UPLOAD_MAX_BYTES", str(5 * 1024**4)))
STORAGE_UPLOAD_CONTENT_TYPES = env_list("STORAGE_UPLOAD_CONTENT_TYPES")
# A browser upload that sends nothing for this long is aborted.
STORAGE_UPLOAD_IDLE_SECONDS = float(env("STORAGE_UPLOAD_IDLE_SECONDS", "120"))
# Port of the demo's in-memory S3 (moto) that bin/console starts when moto is installed.
STORAGE_DEMO_S3_PORT = int(env("STORAGE_DEMO_S3_PORT", "8010"))
STORAGE_PRESIGN_MAX_SECONDS = int(env("STORAGE_PRESIGN_MAX_SECONDS", "3600"))
STORAGE_CONNECT_TIMEOUT = float(env("STORAGE_CONNECT_TIMEOUT", "5"))
STORAGE_READ_TIMEOUT = float(env("STORAGE_READ_TIMEOUT", "60"))
# Multipart uploads the console could not abort (endpoint down) or that outlived this are aborted.
STORAGE_STALE_UPLOAD_HOURS = int(env("STORAGE_STALE_UPLOAD_HOURS", "24"))
# JSON {"STORAGE_CLASS": USD per GiB-month} for storage.analyze; empty = AWS us-east-1 list prices.
STORAGE_PRICE_TABLE = env("STORAGE_PRICE_TABLE")
