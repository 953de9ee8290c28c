-- One row per active customer tonight: the rows the scorer labels.
with

features as (

    select * from {{ ref('customer_features') }}

),

final as (

    select * from features
    where as_of_date = {{ as_of_date() }}

)

select * from final
