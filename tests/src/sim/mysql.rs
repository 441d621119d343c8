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
pub const ENTRYPOINT: &str = r#"
set -e
DATADIR=/var/lib/mysql
mkdir -p "$DATADIR" /run/mysqld
PASS="${MYSQL_ROOT_PASSWORD:-${MARIADB_ROOT_PASSWORD:-}}"
SERVER=/usr/sbin/mariadbd
[ -x "$SERVER" ] || SERVER=/usr/sbin/mysqld
if [ ! -d "$DATADIR/mysql" ]; then
  echo "Initializing database files in $DATADIR"
  mariadb-install-db --user=root --datadir="$DATADIR" --auth-root-authentication-method=normal --skip-test-db >/dev/null
  INIT=/run/mysqld/init.sql
  {
    echo "FLUSH PRIVILEGES;"
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
    if [ -f "$DATADIR/.sim-init.sql" ]; then cat "$DATADIR/.sim-init.sql"; rm -f "$DATADIR/.sim-init.sql"; fi
    # As the official images do: *.sql in /docker-entrypoint-initdb.d, in name order, against
    # MYSQL_DATABASE when it is set (charts mount their schema there from a ConfigMap).
    for f in /docker-entrypoint-initdb.d/*.sql; do
      [ -f "$f" ] || continue
      if [ -n "${MYSQL_DATABASE:-}" ]; then echo "USE \`$MYSQL_DATABASE\`;"; fi
      cat "$f"; echo
    done
  } > "$INIT"
  exec "$SERVER" --user=root --datadir="$DATADIR" --socket=/run/mysqld/mysqld.sock --port=3306 --bind-address=127.0.0.1 --skip-name-resolve --init-file="$INIT"
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
