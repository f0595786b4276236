-- Published per-event explanation (int_marketing_events__judged): read by `sales-kpi explain`.
select * from {{ ref('int_marketing_events__judged') }}
