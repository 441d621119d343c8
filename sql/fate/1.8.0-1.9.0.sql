-- FATE schema migration: 1.8.0 -> 1.9.0
--
-- Connects: FATE v1.8.0 (1.8.0-release) to FATE v1.9.0 (1.9.0-release).
-- Run against: the FATE MySQL database (eggroll_meta in KubeFATE). The script
--   names no database; select it on the command line, e.g.
--   `mysql -u root eggroll_meta < 1.8.0-1.9.0.sql`.
--
-- Changes:
--   t_machine_learning_model_info (FATE-Flow model registry)
--     + f_archive_sha256  VARCHAR(100) NULL   checksum of the model archive
--     + f_archive_from_ip VARCHAR(100) NULL   host the archive came from
--                                             (existing rows: NULL for both)
--   t_task (FATE-Flow tasks)
--     + f_run_port     INT NULL                   port of the task executor
--                                                 (existing rows: NULL)
--     + f_kill_status  TINYINT(1) NULL DEFAULT 1  kill flag of the task's
--                                                 process; existing rows get
--                                                 1, the value FATE's own
--                                                 1.8.0->1.9.0 upgrade gives
--                                                 them (new rows are always
--                                                 written by FATE-Flow with
--                                                 an explicit value)
--     + f_error_report TEXT NULL                  error text of a failed task
--                                                 (existing rows: NULL)
--   Nothing else. Tables that are new in 1.9.0 are created by FATE-Flow 1.9.0
--   itself when it starts (it creates every missing table of its models);
--   Eggroll's own tables (server_node, store_locator, session_main, ...) keep
--   the same layout across the Eggroll 2.4 releases FATE 1.8.0 and 1.9.0 use
--   (Eggroll's first layout change came with 2.5). No row is updated or
--   deleted.
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

-- t_machine_learning_model_info.f_archive_sha256
SET @fate_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE()
        AND TABLE_NAME = 't_machine_learning_model_info'
        AND COLUMN_NAME = 'f_archive_sha256') = 0,
    'ALTER TABLE t_machine_learning_model_info ADD COLUMN f_archive_sha256 VARCHAR(100) NULL',
    'DO 0');
PREPARE fate_stmt FROM @fate_ddl;
EXECUTE fate_stmt;
DEALLOCATE PREPARE fate_stmt;

-- t_machine_learning_model_info.f_archive_from_ip
SET @fate_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE()
        AND TABLE_NAME = 't_machine_learning_model_info'
        AND COLUMN_NAME = 'f_archive_from_ip') = 0,
    'ALTER TABLE t_machine_learning_model_info ADD COLUMN f_archive_from_ip VARCHAR(100) NULL',
    'DO 0');
PREPARE fate_stmt FROM @fate_ddl;
EXECUTE fate_stmt;
DEALLOCATE PREPARE fate_stmt;

-- t_task.f_run_port
SET @fate_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE()
        AND TABLE_NAME = 't_task'
        AND COLUMN_NAME = 'f_run_port') = 0,
    'ALTER TABLE t_task ADD COLUMN f_run_port INT NULL',
    'DO 0');
PREPARE fate_stmt FROM @fate_ddl;
EXECUTE fate_stmt;
DEALLOCATE PREPARE fate_stmt;

-- t_task.f_kill_status
SET @fate_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE()
        AND TABLE_NAME = 't_task'
        AND COLUMN_NAME = 'f_kill_status') = 0,
    'ALTER TABLE t_task ADD COLUMN f_kill_status TINYINT(1) NULL DEFAULT 1',
    'DO 0');
PREPARE fate_stmt FROM @fate_ddl;
EXECUTE fate_stmt;
DEALLOCATE PREPARE fate_stmt;

-- t_task.f_error_report
SET @fate_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE()
        AND TABLE_NAME = 't_task'
        AND COLUMN_NAME = 'f_error_report') = 0,
    'ALTER TABLE t_task ADD COLUMN f_error_report TEXT NULL',
    'DO 0');
PREPARE fate_stmt FROM @fate_ddl;
EXECUTE fate_stmt;
DEALLOCATE PREPARE fate_stmt;

SET @fate_ddl = NULL;
