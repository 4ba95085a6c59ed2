#!/usr/bin/env bash
# Start PostgreSQL and Redis on this machine when they do not answer (tests need both).
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
fi

for _ in $(seq 1 60); do
  if pg_up && redis_up; then exit 0; fi
  sleep 0.5
done
pg_up || echo "PostgreSQL does not answer on 127.0.0.1:5432 (set LOYALTY_TEST_PG or start it)" >&2
redis_up || echo "Redis does not answer on 127.0.0.1:6379 (set LOYALTY_TEST_REDIS or start it)" >&2
exit 1
