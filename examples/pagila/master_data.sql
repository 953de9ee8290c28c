-- pagila (a DVD rental store) mapped onto custlabel's master-data contract by views.
-- One view per contract table, every contract column present (null where pagila has
-- no value), each cast to the contract's type: `dbt build` checks them (matches_contract).
--
-- What maps, and how:
--   customers: customer → customer_id; created_at is the first rental when that is
--     older than create_date (pagila's create_date, 2006-02-14 for everyone, is when the
--     records were migrated, after most rentals); country from address → city → country
--     (a country name, not an ISO code; fairness reports only).
--   sales: one sale per rental, sold when the rental starts, quantity 1, amount = what
--     was paid for it (payment.amount by rental_id), completed; paid when rented (a
--     rental store takes the money at the counter) if a payment exists.
-- What cannot be mapped:
--   payment.payment_date: payments are dated 2006-11 .. 2007-10, 18 to 20 months after
--     the rentals they pay for, with no fixed offset, so they say nothing about when a
--     rental was paid; only their amounts are used.
--   invoices and due dates (due_at), returns and cancellations (status_changed_at: a
--     returned DVD is the normal end of a rental, not a returned sale), sales channel,
--     customer segment (the home store is no segment), birth dates and gender: pagila
--     has none; they stay null.
--   a load time (loaded_at) and when a rental reached the database (recorded_at):
--     pagila's last_update was rewritten in bulk (2006 and 2022), so freshness falls
--     back to updated_at and sold_at; a replay of a 2005 night is judged with the var
--     freshness: warn (the extract is newer than the night).

create or replace view master_data.customers as
select
    customer.customer_id::text as customer_id,
    least(customer.create_date::timestamptz, first_rental.rented_at) as created_at,
    customer.last_update::timestamptz as updated_at,
    country.country::text as country,
    null::text as segment,
    null::date as birth_date,
    null::text as gender,
    null::timestamptz as loaded_at
from pagila.customer as customer
left join pagila.address as address on address.address_id = customer.address_id
left join pagila.city as city on city.city_id = address.city_id
left join pagila.country as country on country.country_id = city.country_id
left join (
    select customer_id, min(lower(rental_period))::timestamptz as rented_at
    from pagila.rental
    group by customer_id
) as first_rental on first_rental.customer_id = customer.customer_id;

create or replace view master_data.sales as
select
    rental.rental_id::text as sale_id,
    rental.customer_id::text as customer_id,
    lower(rental.rental_period)::timestamptz as sold_at,
    1::numeric as quantity,
    coalesce(paid.amount, 0)::numeric as amount,
    'completed'::text as status,
    null::timestamptz as status_changed_at,
    null::date as due_at,
    case when paid.amount is not null then lower(rental.rental_period)::timestamptz end as paid_at,
    null::text as channel,
    null::timestamptz as recorded_at,
    greatest(rental.last_update, lower(rental.rental_period))::timestamptz as updated_at,
    null::timestamptz as loaded_at
from pagila.rental as rental
left join (
    select rental_id, sum(amount) as amount
    from pagila.payment
    group by rental_id
) as paid on paid.rental_id = rental.rental_id;
