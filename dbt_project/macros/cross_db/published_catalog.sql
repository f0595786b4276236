{#- The published marts as tables of the engine's catalog (README, "Engines"). On DuckDB the
    published file is itself the catalog readers attach, so there is nothing to define. On
    Spark, each published table is an external Parquet table in `database`, located at its
    published file `<warehouse>/parquet/<table>.parquet`: through the link the publisher swaps
    atomically (pipelines/publish.py), so the tables read whatever is published — this run's
    marts once it publishes them, the previous publication when a blocking check stops it.
    `tables` (pipelines/spark_build.py, published_catalog): table → its `location`, and its
    columns: the publisher's own (`columns`: [name, Spark type]) then the built mart's (`mart`
    in `marts_schema`; all, or `mart_columns` in that order). -#}
{% macro published_tables(database, marts_schema, tables) -%}
    {{ return(adapter.dispatch('published_tables')(database, marts_schema, tables)) }}
{%- endmacro %}

{% macro default__published_tables(database, marts_schema, tables) -%}
{%- endmacro %}

{#- The columns are given, not inferred from the files: the publisher writes the files after
    the build (and on the first night there are none yet). A mart this build did not make
    (a failed or partial build) leaves its tables undefined. `skipHiveMetadata`: a Hive
    metastore takes only folders as a table's location, so a Hive-compatible definition of a
    file location is refused (and Spark falls back, with a warning, to its own format), and
    one whose file does not exist yet makes a real folder there, where the publisher's link
    goes; Spark's own format keeps the file path as it is. Dropping an external table leaves
    its files alone. -#}
{% macro spark__published_tables(database, marts_schema, tables) -%}
    {% do run_query('create database if not exists ' ~ database) %}
    {% for name, table in tables.items() %}
        {% set columns = [] %}
        {% for column, type in table.get('columns', []) %}
            {% do columns.append('`' ~ column ~ '` ' ~ type) %}
        {% endfor %}
        {% set mart = none %}
        {% if table.get('mart') %}
            {% set mart = adapter.get_relation(database=none, schema=marts_schema, identifier=table['mart']) %}
            {% if mart is not none %}
                {% set built = {} %}
                {% for column in adapter.get_columns_in_relation(mart) %}
                    {% do built.update({column.name: column.dtype}) %}
                {% endfor %}
                {% for column in table.get('mart_columns') or built.keys() | list %}
                    {% do columns.append('`' ~ column ~ '` ' ~ built[column]) %}
                {% endfor %}
            {% endif %}
        {% endif %}
        {% do run_query('drop table if exists ' ~ database ~ '.' ~ name) %}
        {% if mart is not none or not table.get('mart') %}
            {% do run_query(
                'create table ' ~ database ~ '.' ~ name ~ ' (' ~ columns | join(', ') ~ ') '
                ~ "using parquet options (skipHiveMetadata 'true') location '"
                ~ table['location'] | replace("\\", "\\\\") | replace("'", "\\'") ~ "'"
            ) %}
        {% endif %}
    {% endfor %}
{%- endmacro %}

{#- The nightly job's Spark build defines the published tables in its own Spark session: an
    `on-run-end` hook that does so when the var `published_catalog` is given
    (pipelines/spark_build.py), and nothing otherwise (DuckDB, dbt's unit tests). -#}
{% macro published_tables_from_var() -%}
    {% if execute and var('published_catalog', none) %}
        {% set catalog = var('published_catalog') %}
        {% do published_tables(catalog['database'], catalog['marts_schema'], catalog['tables']) %}
    {% endif %}
{%- endmacro %}
