-- A bill run writes 50,000 bills and 200,000 lines in one transaction, and every index is
-- written per row. These serve no query: lines are read by their bill (never by company or
-- fee item, whose keys 0025 dropped), bills by id, house, space, payer, project or run,
-- and the space's period key already leads with the space (the parking_spaces key check).
DROP INDEX bill_lines_company_id_idx;
DROP INDEX bill_lines_fee_item_id_idx;
DROP INDEX bills_company_id_idx;
DROP INDEX bills_parking_space_id_idx;
