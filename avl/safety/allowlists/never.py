"""Functions that no default allow-list may hold, by the reason they are refused.

A name written ``dialect:name`` applies to that dialect only (DuckDB's ``glob`` lists
files; SQLite's is a pattern match). These lists do not decide anything on their own: a function is allowed only when an
allow-list names it. They give a refused call its reason and code
(``function_denied`` or, for catalogue and server readers, ``system_catalog``) instead
of the plain ``function_not_allowed``, and ``tests/safety/test_allowlists.py`` asserts
that no default allow-list holds any of them. The classes were gathered from
PostgreSQL's ``pg_proc``, SQLite's ``pragma_function_list``, DuckDB's
``duckdb_functions()`` and MariaDB's built-ins, plus the SQL-injection literature.
"""

from __future__ import annotations

# reason -> (whether the class reads catalogues/settings (code system_catalog), names)
NEVER: dict[str, tuple[bool, str]] = {
    "runs SQL given as text": (
        False,
        """
        query query_table query_to_xml query_to_xmlschema query_to_xml_and_xmlschema
        cursor_to_xml cursor_to_xmlschema ts_stat ts_rewrite json_execute_serialized_sql
        json_deserialize_sql json_serialize_sql json_serialize_plan sp_executesql exec
        execute eval dbms_xmlgen.getxml dbms_xmlquery.newcontext xmltype sys_eval
        sys_exec sys_bineval run_command_on_workers pg_execute_server_program
        """,
    ),
    "reads a relation, schema or database by name": (
        False,
        """
        table_to_xml table_to_xmlschema table_to_xml_and_xmlschema schema_to_xml
        schema_to_xmlschema schema_to_xml_and_xmlschema database_to_xml
        database_to_xmlschema database_to_xml_and_xmlschema summary seq_scan
        json_populate_record json_populate_recordset jsonb_populate_record
        jsonb_populate_recordset enum_range enum_first enum_last has_table_privilege
        has_column_privilege has_any_column_privilege has_database_privilege
        has_schema_privilege has_function_privilege has_sequence_privilege
        to_regclass to_regproc to_regprocedure to_regtype to_regnamespace to_regrole
        object_id object_name col_name col_length
        """,
    ),
    "reads or writes a file, a URL or another server": (
        False,
        """
        load_file readfile writefile edit fsdir lsmode zipfile read_csv read_csv_auto
        read_parquet read_json read_json_auto read_ndjson read_ndjson_auto read_text
        read_blob read_xlsx read_duckdb parquet_scan parquet_metadata parquet_schema
        parquet_file_metadata parquet_kv_metadata parquet_bloom_probe csv_scan
        json_scan sniff_csv iceberg_scan delta_scan sqlite_scan postgres_scan
        mysql_scan st_read duckdb:glob openrowset opendatasource openquery openxml bulk
        dblink dblink_exec dblink_connect dblink_connect_u dblink_send_query
        dblink_get_result dblink_open dblink_fetch lo_import lo_export lo_get lo_put
        lo_from_bytea lo_open lo_create lo_unlink lo_write lo_read loread lowrite
        pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file utl_http.request
        utl_file.fopen httpuritype http_get http_post http_request xp_cmdshell
        xp_dirtree xp_fileexist load_extension fts3_tokenizer
        """,
    ),
    "reads server settings, catalogues, activity or session information": (
        True,
        """
        current_setting getvariable getenv version current_user session_user user
        system_user current_role current_database current_schema current_schemas
        current_catalog current_query database schema connection_id
        inet_server_addr inet_server_port inet_client_addr inet_client_port
        pg_backend_pid pg_show_all_settings pg_stat_get_activity pg_postmaster_start_time
        pg_conf_load_time pg_current_logfile pg_typeof sqlite_version sqlite_source_id
        sqlite_compileoption_get sqlite_compileoption_used sqlite_offset db_name
        user_name suser_name suser_sname host_name serverproperty sys_context
        charset collation coercibility found_rows row_count last_insert_id
        last_insert_rowid changes total_changes txid_current_snapshot
        current_connection_id current_transaction_id in_search_path
        col_description obj_description shobj_description format_type is_srvrolemember
        is_member has_dbaccess has_perms_by_name current_account current_account_name
        current_warehouse current_region current_client current_session
        current_statement current_transaction current_version current_ip_address
        current_organization_name current_organization_user current_available_roles
        current_secondary_roles current_role_type current_user_id current_timezone
        get_ddl result_scan pragma_table_info pragma_storage_info
        """,
    ),
    "changes session or server state": (
        False,
        """
        set_config setseed nextval setval currval lastval txid_current pg_current_xact_id
        pg_reload_conf
        pg_rotate_logfile pg_terminate_backend pg_cancel_backend pg_switch_wal
        pg_create_restore_point pg_promote pg_notify pg_export_snapshot
        pg_logical_emit_message pg_stat_reset sqlite_log write_log checkpoint
        force_checkpoint enable_profiling disable_profiling enable_logging
        disable_logging optimize
        """,
    ),
    "sleeps, locks or burns time": (
        False,
        """
        sleep pg_sleep pg_sleep_for pg_sleep_until sleep_ms benchmark waitfor
        get_lock release_lock release_all_locks is_free_lock is_used_lock
        master_pos_wait source_pos_wait master_gtid_wait pg_advisory_lock
        pg_advisory_xact_lock pg_advisory_lock_shared pg_try_advisory_lock
        pg_advisory_unlock pg_advisory_unlock_all dbms_lock.sleep dbms_pipe.receive_message
        """,
    ),
    "raises errors that carry data (error-based exfiltration)": (
        False,
        "extractvalue updatexml name_const gtid_subset gtid_subtract exp_error error uncompress",
    ),
}

# Whole families, by name prefix (reason as above).
NEVER_PREFIXES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "sleeps, locks or burns time": (False, ("pg_sleep", "pg_advisory", "pg_try_advisory")),
    "reads server settings, catalogues, activity or session information": (
        True,
        ("pg_", "duckdb_", "pragma_", "sqlite_", "has_", "sys_", "fn_", "system$"),
    ),
    "reads or writes a file, a URL or another server": (
        False,
        ("read_", "lo_", "dblink", "xp_", "utl_", "http_"),
    ),
    "runs SQL given as text": (False, ("sp_", "dbms_")),
    "reads a relation, schema or database by name": (
        False,
        ("table_to_", "schema_to_", "database_to_", "query_to_", "cursor_to_"),
    ),
}

# Package qualifiers (``package.function``) that are never allowed.
NEVER_PACKAGES: frozenset[str] = frozenset(
    {
        "dbms_pipe", "dbms_lock", "dbms_session", "dbms_java", "dbms_scheduler",
        "dbms_xmlgen", "dbms_xmlquery", "dbms_ldap", "dbms_utility", "dbms_sql",
        "dbms_xslprocessor", "dbms_aw_xml", "dbms_export_extension", "dbms_xdb_version",
        "dbms_output", "dbms_random", "utl_http", "utl_file", "utl_inaddr", "utl_tcp",
        "utl_smtp", "utl_mail", "ctxsys", "ordsys", "sys", "master", "msdb", "mysql",
        "pg_catalog", "information_schema",
    }
)  # fmt: skip
