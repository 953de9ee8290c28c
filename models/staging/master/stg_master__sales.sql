-- One row per row of master_data.sales, flagged. The rules are in the macro
-- stage_master_sales, so that the incremental int_sales_checked can stage only the
-- sales that changed since its last build with exactly the same rules.
{{ stage_master_sales(source('master_data', 'sales')) }}
