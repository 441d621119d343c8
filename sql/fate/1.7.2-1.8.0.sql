-- FATE schema migration: 1.7.2 -> 1.8.0
--
-- Connects: FATE v1.7.2 (1.7.2-release) to FATE v1.8.0 (1.8.0-release).
-- Run against: the FATE MySQL database (eggroll_meta in KubeFATE). The script
--   names no database; select it on the command line, e.g.
--   `mysql -u root eggroll_meta < 1.7.2-1.8.0.sql`.
--
-- Changes:
--   t_storage_table_meta (FATE-Flow / fate_arch storage table registry)
--     + f_origin  VARCHAR(50) NOT NULL DEFAULT ''     where a table came from
--                                                     (existing rows: '')
--     + f_disable BOOL        NOT NULL DEFAULT FALSE  table disabled flag
--                                                     (existing rows: 0)
--   Nothing else. Tables that are new in 1.8.0 are created by FATE-Flow 1.8.0
--   itself when it starts (it creates every missing table of its models);
--   Eggroll's own tables (server_node, store_locator, session_main, ...) keep
--   the same layout across the Eggroll 2.4 releases FATE 1.7.2 and 1.8.0 use.
--   No row is updated or deleted.
--
-- Re-runnable: yes. Each column is added only when information_schema shows
--   it missing, so a second run (or a run after a partial failure) changes
--   nothing that is already in place. The guard uses PREPARE/EXECUTE rather
--   than `ADD COLUMN IF NOT EXISTS`, which MariaDB has but MySQL 8 lacks, so
--   the same text works on MySQL 5.7/8.0 and MariaDB 10.x.
--
-- Failure handling: DDL in MySQL commits implicitly, so there is no enclosing
--   transaction. Feed the script to the mysql/mariadb command-line client
--   WITHOUT --force: in batch mode the client stops at the first failing
--   statement and exits non-zero, so nothing after an error runs. A missing
--   table (wrong database, or not a FATE database) or no selected database
--   makes the ALTER fail, which stops the script. Because every step is
--   guarded, fixing the cause and running the whole script again is safe.

SET @fate_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE()
        AND TABLE_NAME = 't_storage_table_meta'
        AND COLUMN_NAME = 'f_origin') = 0,
    'ALTER TABLE t_storage_table_meta ADD COLUMN f_origin VARCHAR(50) NOT NULL DEFAULT ''''',
    'DO 0');
PREPARE fate_stmt FROM @fate_ddl;
EXECUTE fate_stmt;
DEALLOCATE PREPARE fate_stmt;

SET @fate_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE()
        AND TABLE_NAME = 't_storage_table_meta'
        AND COLUMN_NAME = 'f_disable') = 0,
    'ALTER TABLE t_storage_table_meta ADD COLUMN f_disable BOOL NOT NULL DEFAULT FALSE',
    'DO 0');
PREPARE fate_stmt FROM @fate_ddl;
EXECUTE fate_stmt;
DEALLOCATE PREPARE fate_stmt;

SET @fate_ddl = NULL;
