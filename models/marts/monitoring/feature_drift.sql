-- One row per night, model version and feature: the population stability index
-- (PSI) of the customers the version labelled that night against the version's
-- training rows (psi), and against the customers it labelled on its reference night
-- (psi_since_first_night, version_reference_nights: its first night labelling most
-- customers; the drift since the version went live, which the training
-- window's own age does not inflate). Sensitive attributes are compared too, for
-- population shift. Shares are floored at 1e-4 so that empty bins count.
with

shares as (

    select * from {{ ref('feature_bin_shares') }}

),

reference as (

    select * from {{ ref('reference_bins') }}

),

first_nights as (

    select model_name, model_version, reference_night as first_night
    from {{ ref('version_reference_nights') }}

),

first_shares as (

    select shares.model_name, shares.model_version, shares.feature, shares.bin, shares.share, first_nights.first_night
    from shares
    inner join first_nights
        on shares.model_name = first_nights.model_name
        and shares.model_version = first_nights.model_version
        and shares.as_of_date = first_nights.first_night

),

night_features as (

    select distinct as_of_date, model_name, model_version, feature, feature_kind from shares

),

-- every bin of a feature held by the reference, the first night or the night
grid as (

    select night_features.as_of_date, night_features.model_name, night_features.model_version,
           night_features.feature, known.bin
    from night_features
    inner join (
        select model_name, model_version, feature, bin from reference
        union
        select model_name, model_version, feature, bin from first_shares
    ) as known using (model_name, model_version, feature)
    union
    select as_of_date, model_name, model_version, feature, bin from shares

),

compared as (

    select
        grid.as_of_date,
        grid.model_name,
        grid.model_version,
        grid.feature,
        grid.bin,
        coalesce(shares.customers_in_bin, 0) as customers_in_bin,
        coalesce(shares.share, 0) as night_raw_share,
        coalesce(reference.reference_share, 0) as reference_raw_share,
        greatest(coalesce(shares.share, 0), 1e-4) as night_share,
        greatest(coalesce(reference.reference_share, 0), 1e-4) as reference_share,
        greatest(coalesce(first_shares.share, 0), 1e-4) as first_night_share
    from grid
    left join shares using (as_of_date, model_name, model_version, feature, bin)
    left join reference using (model_name, model_version, feature, bin)
    left join first_shares using (model_name, model_version, feature, bin)

),

final as (

    select
        ---------- keys
        compared.as_of_date,
        compared.model_name,
        compared.model_version,
        compared.feature,
        night_features.feature_kind,

        ---------- drift against training
        sum(compared.customers_in_bin)::bigint as customers,
        sum((night_share - reference_share) * ln(night_share / reference_share))::{{ type_float() }} as psi,

        ---------- drift since the version's first night
        first_nights.first_night,
        sum((night_share - first_night_share) * ln(night_share / first_night_share))::{{ type_float() }} as psi_since_first_night,

        ---------- nulls and unseen categories
        coalesce(sum(night_raw_share) filter (where compared.bin = 0), 0)::{{ type_float() }} as null_share,
        coalesce(sum(reference_raw_share) filter (where compared.bin = 0), 0)::{{ type_float() }} as reference_null_share,
        coalesce(sum(night_raw_share) filter (where compared.bin = -1), 0)::{{ type_float() }} as unseen_share

    from compared
    inner join night_features using (as_of_date, model_name, model_version, feature)
    inner join first_nights using (model_name, model_version)
    group by 1, 2, 3, 4, 5, first_nights.first_night

)

select * from final
