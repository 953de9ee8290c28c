-- One row per night: the dbt tests of that night's runs (every `dbt build` of the
-- nightly flow) by outcome, the rows they found failing, and the names of the tests
-- that warned or failed, Elementary-style.
with

results as (

    select * from {{ ref('data_test_history') }}

),

final as (

    select
        ---------- keys
        as_of_date,

        ---------- runs
        count(distinct invocation_id)::bigint as dbt_invocations,
        max(generated_at) as last_result_at,

        ---------- outcomes
        count(*)::bigint as tests_run,
        count(*) filter (where status = 'pass')::bigint as tests_passed,
        count(*) filter (where status = 'warn')::bigint as tests_warned,
        count(*) filter (where status in ('fail', 'error'))::bigint as tests_failed,
        coalesce(sum(failures) filter (where status in ('warn', 'fail', 'error')), 0)::bigint as failing_rows,
        {{ distinct_text_list('test_name', "status in ('fail', 'error')") }} as failed_tests,
        {{ distinct_text_list('test_name', "status = 'warn'") }} as warned_tests

    from results
    group by as_of_date

)

select * from final
