{#-
    Which row of a record wins (contract: "Deliveries").
    Rows are versions of records. Per primary key:
      - entities with `updated_at`: the latest `updated_at`; on a tie the later delivery
        (deliveries sort by name), then the later load of that file, then the later line;
      - entities without it: the latest delivery, then the later load, then the later line.
    Byte-identical re-deliveries never reach raw (the loader records them as duplicates).
-#}
{% macro latest_version(key_columns, by_updated_at=true) -%}
    qualify row_number() over (
        partition by {{ key_columns | join(', ') }}
        order by {% if by_updated_at %}updated_at desc, {% endif %}_delivery desc, _load_id desc, _line desc
    ) = 1
{%- endmacro %}
