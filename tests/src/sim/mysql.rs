//! What a MySQL or MariaDB image does without a command: start a real MariaDB server on the data
//! volume, initialising it on first start the way the official images' entrypoints do
//! (root password from `MYSQL_ROOT_PASSWORD`/`MARIADB_ROOT_PASSWORD`, `MYSQL_DATABASE`,
//! `MYSQL_USER`/`MYSQL_PASSWORD`).

use std::path::Path;

/// Whether an image is a MySQL-compatible server image.
pub fn is_mysql_image(image: &str) -> bool {
    let repo = image.rsplit('/').next().unwrap_or_default();
    let repo = repo.split([':', '@']).next().unwrap_or_default();
    matches!(
        repo,
        "mysql" | "mariadb" | "mysql-server" | "percona-server" | "percona"
    )
}

/// Whether the MariaDB server binaries are installed.
pub fn available() -> bool {
    Path::new("/usr/sbin/mariadbd").exists() || Path::new("/usr/sbin/mysqld").exists()
}

/// The shell script the container runs (inside the pod's mount and network namespaces). It
/// initialises an empty (or marker-only) data directory, then execs the server in the foreground.
///
/// As the official images' entrypoint does, the initialisation runs against a temporary server
/// without networking on a private socket, through the client, and only then does the real
/// server start and create the socket that readiness looks for. A marker in the data directory
/// stays until the initialisation has finished: a container killed or failed while it ran (a
/// restart under load) starts it over instead of serving half-initialised grant tables.
pub const ENTRYPOINT: &str = r#"
set -e
DATADIR=/var/lib/mysql
mkdir -p "$DATADIR" /run/mysqld
PASS="${MYSQL_ROOT_PASSWORD:-${MARIADB_ROOT_PASSWORD:-}}"
SERVER=/usr/sbin/mariadbd
[ -x "$SERVER" ] || SERVER=/usr/sbin/mysqld
PENDING="$DATADIR/.sim-init-pending"
if [ -f "$PENDING" ]; then
  echo "The initialisation of $DATADIR did not finish; starting it over"
  find "$DATADIR" -mindepth 1 -maxdepth 1 ! -name .sim-init.sql ! -name .sim-init-pending -exec rm -rf {} +
fi
if [ ! -d "$DATADIR/mysql" ]; then
  : > "$PENDING"
  echo "Initializing database files in $DATADIR"
  mariadb-install-db --user=root --datadir="$DATADIR" --auth-root-authentication-method=normal --skip-test-db >/dev/null
  INIT=/run/mysqld/init.sql
  {
    if [ -n "$PASS" ]; then
      echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$PASS';"
      echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$PASS';"
      echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    fi
    if [ -n "${MYSQL_DATABASE:-}" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"; fi
    if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
      echo "CREATE USER IF NOT EXISTS '$MYSQL_USER'@'%' IDENTIFIED BY '$MYSQL_PASSWORD';"
      if [ -n "${MYSQL_DATABASE:-}" ]; then echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"; fi
    fi
    if [ -f "$DATADIR/.sim-init.sql" ]; then cat "$DATADIR/.sim-init.sql"; echo; fi
    # As the official images do: *.sql in /docker-entrypoint-initdb.d, in name order, against
    # MYSQL_DATABASE when it is set (charts mount their schema there from a ConfigMap).
    for f in /docker-entrypoint-initdb.d/*.sql; do
      [ -f "$f" ] || continue
      if [ -n "${MYSQL_DATABASE:-}" ]; then echo "USE \`$MYSQL_DATABASE\`;"; fi
      cat "$f"; echo
    done
  } > "$INIT"
  SOCK=/run/mysqld/init.sock
  "$SERVER" --user=root --datadir="$DATADIR" --skip-networking --socket="$SOCK" --pid-file=/run/mysqld/init.pid &
  TEMP=$!
  until mariadb --no-defaults --protocol=socket -S "$SOCK" -uroot -e "SELECT 1" >/dev/null 2>&1; do
    kill -0 "$TEMP" 2>/dev/null || { echo "the temporary server for the initialisation exited"; exit 1; }
    sleep 0.2
  done
  mariadb --no-defaults --protocol=socket -S "$SOCK" -uroot < "$INIT"
  rm -f "$INIT"
  kill "$TEMP"
  wait "$TEMP" || true
  rm -f "$DATADIR/.sim-init.sql" "$PENDING"
fi
exec "$SERVER" --user=root --datadir="$DATADIR" --socket=/run/mysqld/mysqld.sock --port=3306 --bind-address=127.0.0.1 --skip-name-resolve
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_mysql_images() {
        assert!(is_mysql_image("mysql:8.0.28"));
        assert!(is_mysql_image("docker.io/library/mariadb:10.6"));
        assert!(!is_mysql_image("federatedai/python:1.8.0-release"));
        assert!(!is_mysql_image("prom/mysqld-exporter:v0.14.0"));
    }
}
