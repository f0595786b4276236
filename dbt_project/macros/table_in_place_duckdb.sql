{#- The table materialization on DuckDB, built in place: inside one transaction the model's
    table is dropped and created again under its own name, then committed. DuckDB's DDL is
    transactional, so a model that fails leaves its table as it was (the rollback undoes the
    drop) and a reader never sees it half built; our own stages read the build only after
    dbt has finished.

    Why not dbt-duckdb's own `table`: it builds beside (`<name>__dbt_tmp`), looks up indexes,
    renames the old table away and the new one into place, commits and drops the backup:
    four more statements per model, each paying dbt's per-statement overhead (macro calls,
    events, the relation cache) while the SQL itself takes a millisecond. On the sample that
    was ≈ 1 CPU-s of every `dbt build` (≈ 10 %; bench/README.md, "Issue 14: tables built in
    place"). This is the path dbt-duckdb itself takes for a table with foreign keys
    (`drop_relation_for_rebuild`), taken for every table; hooks, contracts (enforced by
    `create_table_as`), grants and persisted docs are handled as dbt-duckdb handles them.

    What it does not do, and says so instead of building something else: a model that reads
    its own table (`{{ this }}`: the table is gone when the query runs), DuckLake catalogs and
    `partitioned_by`/`sorted_by` (dbt-duckdb's workarounds for them are not carried over),
    Python models. None of the project's models needs them. Watch item: duckdb/duckdb#25022
    reports a rare commit failure when a checkpointed table is dropped and created again in
    one transaction; the model would then fail and keep its old table (not seen here).
    Spark keeps dbt-spark's materialization (this one is for adapter "duckdb" only). -#}
{% materialization table, adapter="duckdb", supported_languages=["sql"] %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type="table") -%}
  {%- set grant_config = config.get("grants") -%}
  {%- set dropped_dependents = [] -%}
  {%- if this.render() in compiled_code -%}
    {{ exceptions.raise_compiler_error(
         "table_in_place_duckdb: " ~ this ~ " reads its own table, which is dropped before "
         ~ "its query runs; materialize it another way") }}
  {%- endif -%}
  {%- if adapter.use_ducklake_table_workarounds(target_relation)
         or duckdb__get_partitioned_by(target_relation, false)
         or duckdb__get_sorted_by(target_relation, false) -%}
    {{ exceptions.raise_compiler_error(
         "table_in_place_duckdb: DuckLake tables and partitioned_by/sorted_by are not "
         ~ "supported (" ~ this ~ ")") }}
  {%- endif -%}

  {#- what an interrupted build of dbt-duckdb's own materialization may have left beside the
      table (a lookup in the relation cache: no SQL when there is nothing) -#}
  {{ drop_relation_if_exists(load_cached_relation(make_intermediate_relation(target_relation))) }}
  {{ drop_relation_if_exists(load_cached_relation(make_backup_relation(target_relation, "table"))) }}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% if existing_relation is not none %}
    {% set dropped_dependents = drop_relation_for_rebuild(existing_relation) %}
  {% endif %}
  {% call statement("main") -%}
    {{- create_table_as(False, target_relation, compiled_code) }}
  {%- endcall %}
  {% do restore_foreign_key_dependents(dropped_dependents) %}
  {% do create_indexes(target_relation) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}
